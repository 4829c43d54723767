"""stages.lib.paper_tables: the 22 tables' numbers, rounding, bold rules and rendering on hand-made rows."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from stages.lib import paper_tables as pt
from stages.lib.results_index import display_name

BASE_REP = 0.5
BASE_ORIG = 0.4


def vs_rows(condition: str, seeds: dict, instr=("en",), benches=("sib200",), datas=("en", "es", "zh", "ur"),
            orig_delta: float = 0.0) -> list[dict]:
    """Rows of one condition: ``seeds`` maps seed -> refined accuracy (the same in every cell)."""
    rows = []
    for (seed, acc), t, b, d, i in itertools.product(seeds.items(), (1, 2), benches, datas, instr):
        rows.append({"condition": condition, "seed": seed, "template": t, "benchmark": b, "data_lang": d, "instr_lang": i,
                     "baseline_orig": BASE_ORIG, "cond_orig": round(BASE_ORIG + orig_delta, 4),
                     "delta_orig": round(orig_delta, 4), "baseline_rep": BASE_REP, "cond_rep": acc,
                     "delta_rep": round(acc - BASE_REP, 4)})
    return rows


def base_rows() -> pd.DataFrame:
    rows = [{"template": t, "benchmark": b, "data_lang": d, "instr_lang": i, "orig": BASE_ORIG, "rep": BASE_REP}
            for t, b, d, i in itertools.product((1, 2), pt.BENCHMARKS, pt.LANGS, pt.LANGS)]
    return pd.DataFrame(rows)


def table(tables, label):
    return next(t for t in tables if t.label == label)


def csv_rows(t):
    return [[c.csv for c in row] for row in t.rows]


def test_rounding_signs_and_negative_zero():
    assert pt.pp(-0.0004) == 0.0 and str(pt.pp(-0.0004)) == "0.0"
    assert pt.delta(-0.0004).tex == "+0.0"
    assert pt.delta(-0.0123).tex == "$-$1.2" and pt.delta(-0.0123).csv == "-1.2"
    assert pt.delta(0.0123).tex == "+1.2"
    assert pt.pct(0.4437).tex == "44.4" and pt.pct(None).tex == "--" and pt.pct(float("nan")).csv == ""


def test_display_names_and_order():
    names = ["condition-5-es-5k-c4ai-aya-expanse-32b", "condition-2-ur-20k", "condition-2-zh-5k", "condition-1-en-20k",
             "condition-3-zh-5k-native-code", "condition-2-es-5k", "condition-1-en-5k", "condition-2-ur-5k"]
    ordered = [display_name(c) for c in sorted(names, key=pt.condition_order)]
    assert ordered == ["Cond 1 (en, 5k)", "Cond 1 (en, 20k)", "Cond 2 (es, 5k)", "Cond 2 (zh, 5k)", "Cond 2 (ur, 5k)",
                       "Cond 2 (ur, 20k)", "Cond 3 (zh, 5k)", "Cond 5 (es, 5k)"]


def test_t3_bolds_a_conclusion_flip_only():
    vs = pd.DataFrame(
        vs_rows("condition-2-es-5k", {"42": 0.48}, instr=("en", "es"), orig_delta=0.02)  # +2 orig, -2 rep: flip
        + vs_rows("condition-2-zh-5k", {"42": 0.505}, instr=("en", "zh"), orig_delta=0.02)  # rep +0.5: within floor
    )
    t3 = pt.t3(vs, base_rows(), "sib200")
    assert t3.columns[:4] == ("Condition", "n_s", "en orig", "en rep")
    es, zh = t3.rows[1], t3.rows[2]
    assert [c.csv for c in es[2:4]] == ["42.0", "48.0"] and es[3].bold and not es[2].bold
    assert not zh[3].bold
    assert r"\textbf{48.0}" in pt.render_tex_table(t3)


def test_t4_threshold_is_per_benchmark():
    vs = pd.DataFrame(vs_rows("condition-1-en-5k", {"42": 0.59, "123": 0.59}, benches=("sib200", "xnli")))
    sib, xnli = pt.t4(vs, "sib200"), pt.t4(vs, "xnli")
    assert sib.rows[0][2].csv == "+9.0" and sib.rows[0][2].bold  # > 8 pp
    assert xnli.rows[0][2].bold  # > 4 pp
    vs = pd.DataFrame(vs_rows("condition-1-en-5k", {"42": 0.57}, benches=("sib200", "xnli")))
    assert not pt.t4(vs, "sib200").rows[0][2].bold and pt.t4(vs, "xnli").rows[0][2].bold


def test_matched_ladder_mean_and_seed_sd():
    vs = pd.DataFrame(vs_rows("condition-2-es-5k", {"42": 0.6, "123": 0.7}, instr=("en", "es"))
                      + vs_rows("condition-5-es-5k-c4ai-aya-expanse-32b", {"42": 0.45}, instr=("en", "es")))
    ladder = pt.matched_ladder(vs, base_rows(), "es")
    assert csv_rows(ladder) == [
        ["Baseline", "", "50.0", "50.0", "50.0", "50.0"],
        ["Cond 2 (es, 5k)", "2", "+15.0 ± 7.1", "", "", ""],
        ["Cond 5 (es, 5k)", "1", "-5.0", "", "", ""],
    ]
    assert r"+15.0 $\pm$ 7.1" in pt.render_tex_table(ladder)


def test_cond2_vs_cond5_gap_bold_over_5pp():
    vs = pd.DataFrame(vs_rows("condition-2-es-5k", {"42": 0.51}, instr=("en", "es"))
                      + vs_rows("condition-5-es-5k-c4ai-aya-expanse-32b", {"42": 0.58}, instr=("en", "es"))
                      + vs_rows("condition-2-zh-5k", {"42": 0.52}, instr=("en", "zh"))
                      + vs_rows("condition-5-zh-5k-c4ai-aya-expanse-32b", {"42": 0.55}, instr=("en", "zh")))
    t = pt.cond2_vs_cond5(vs)
    assert len(t.rows) == 12
    es_sib = [r for r in t.rows if r[0].csv == "es" and r[1].csv == "SIB-200"][0]
    zh_sib = [r for r in t.rows if r[0].csv == "zh" and r[1].csv == "SIB-200"][0]
    # the original's "Gap (C2−C5)": cond 2 − cond 5, so cond 5 ahead is a negative gap
    assert [c.csv for c in es_sib[2:]] == ["+1.0", "+8.0", "-7.0"] and es_sib[4].bold
    assert [c.csv for c in zh_sib[2:]] == ["+2.0", "+5.0", "-3.0"] and not zh_sib[4].bold
    assert t.columns[-1] == "Gap (C2-C5)" and r"\textbf{$-$7.0}" in pt.render_tex_table(t)
    ur = [r for r in t.rows if r[0].csv == "ur"][0]
    assert ur[2].tex == "--"  # absent conditions are shown as absent, not as 0


def test_cross_lingual_transfer_conditions_and_marks():
    vs = pd.DataFrame(vs_rows("condition-2-es-5k", {"42": 0.53})
                      + vs_rows("condition-2-zh-5k", {"42": 0.47})
                      + vs_rows("condition-3-zh-5k-native-code", {"42": 0.51})  # cond 3: not in the original's seven
                      + vs_rows("condition-2-es-20k", {"42": 0.60})  # 20k: not in the table
                      + vs_rows("condition-1-en-20k", {"42": 0.60})  # 20k: not in the table
                      + vs_rows("condition-5-ur-5k-c4ai-aya-expanse-32b", {"42": 0.505})
                      + vs_rows("condition-1-en-5k", {"42": 0.51}))  # the anchor row the caption rests on
    t = pt.cross_lingual_transfer(vs)
    assert [r[0].csv for r in t.rows] == ["Cond 1 (en, 5k)", "Cond 2 (es, 5k)", "Cond 2 (zh, 5k)", "Cond 5 (ur, 5k)"]
    anchor, es, zh, c5 = (r[2] for r in t.rows)
    assert anchor.csv == "+1.0" and c5.csv == "+0.5"
    assert es.bold and not es.italic and zh.italic and not zh.bold and not (anchor.bold or anchor.italic)
    assert r"\textit{$-$3.0}" in pt.render_tex_table(t)


def test_sib200_sign_flip_rule_and_order():
    vs = pd.DataFrame(vs_rows("condition-2-es-5k", {"42": 0.48, "123": 0.47, "456": 0.46}, instr=("en", "es"), orig_delta=0.01)
                      + vs_rows("condition-2-ur-20k", {"42": 0.46}, instr=("en", "ur"), orig_delta=0.1388)
                      + vs_rows("condition-2-zh-5k", {"42": 0.496}, instr=("en", "zh"), orig_delta=0.02)  # |Δrep| .004
                      + vs_rows("condition-3-zh-5k", {"42": 0.45}, instr=("en", "zh"), orig_delta=-0.01))  # Δorig < 0
    t = pt.sib200_sign_flips(vs)
    assert csv_rows(t) == [
        ["Cond 2 (ur, 20k)", "16", "+0.1388", "-0.0400", "0.1788"],
        ["Cond 2 (es, 5k)", "48", "+0.0100", "-0.0300", "0.0400"],
    ]
    assert r"$-$0.0400" in pt.render_tex_table(t)


def test_build_tables_labels_order_and_render():
    vs = pd.DataFrame(vs_rows("condition-1-en-5k", {"42": 0.55, "123": 0.56}, instr=pt.LANGS, benches=pt.BENCHMARKS))
    tables = pt.build_tables(vs, base_rows())
    labels = [t.label for t in tables]
    assert len(labels) == 22 and labels[0] == "tab:t1-sib200" and labels[-1] == "tab:sib200-sign-flips"
    assert labels[4:7] == ["tab:t2-native", "tab:t2-english", "tab:t2-native-delta"]
    assert labels[11:16] == ["tab:t4-sib200-delta", "tab:t4-xnli-delta", "tab:t4-xcsqa-delta", "tab:t4-belebele-delta",
                             "tab:baseline-headroom"]
    tex = pt.render_tex(tables)
    assert tex.count(r"\toprule") == 22 and tex.count(r"\bottomrule") == 22
    assert r"\multicolumn{4}{c}{SIB-200}" in tex and r"\cmidrule(lr){3-6}" in tex
    headroom = table(tables, "tab:baseline-headroom")
    assert csv_rows(headroom)[0] == ["SIB-200", "50.0", "50.0", "50.0", "50.0", "50.0"]
    t1 = table(tables, "tab:t1-xnli")
    assert csv_rows(t1)[1] == ["Cond 1 (en, 5k)", "2", "55.5", "55.5", "55.5", "55.5"]
    assert pt.render_csv(t1).splitlines()[0] == "Condition,n_s,en,es,zh,ur"
    assert table(tables, "tab:sib200-sign-flips").rows == ()
    assert r"\multicolumn{5}{c}{(no rows)}" in tex


@pytest.mark.parametrize("label", ["tab:t2-native", "tab:t2-english", "tab:t2-native-delta"])
def test_t2_tables_have_16_data_columns(label):
    vs = pd.DataFrame(vs_rows("condition-1-en-5k", {"42": 0.6}, instr=pt.LANGS, benches=pt.BENCHMARKS))
    t = table(pt.build_tables(vs, base_rows()), label)
    assert len(t.columns) == 2 + 16 and t.columns[2] == "SIB-200 en"
    last = csv_rows(t)[-1]
    assert last[2:] == (["+10.0"] * 16 if label.endswith("delta") else ["60.0"] * 16)
