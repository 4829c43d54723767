"""stages.report on small synthetic folders in the published layout, with hand-computable numbers.

The fixture: a baseline, ``condition-2-zh-5k`` with three seeds and the single-seed
``condition-5-zh-5k-c4ai-aya-expanse-32b``; benchmarks SIB-200 and XNLI only; data languages en and zh;
10 rows per cell. Refined accuracies come from the rows (reparsed in memory: a raw output equal to
the gold label is right under the refined extractor, ``"???"`` is a parse failure), strict ones from
hand-written ``_summary_`` files:

    refined   baseline 0.5 | cond-2 seeds 42/123/456: SIB 0.6/0.7/0.8, XNLI 0.5/0.5/0.6 | cond-5: SIB 0.3, XNLI 0.6
    strict    baseline 0.5 | cond-2: 0.4                                               | cond-5: 0.6
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stages import report
from stages.lib import phase3_report
from stages.lib.report_significance import significance_columns
from stages.lib.results_index import ReportError, discover_published

ROOT = Path(__file__).resolve().parents[1]
GOLD = {"sib200": "travel", "xnli": "entailment"}
N = 10
COND2, COND5 = "condition-2-zh-5k", "condition-5-zh-5k-c4ai-aya-expanse-32b"
REFINED = {
    ("baseline", "none"): {"sib200": 0.5, "xnli": 0.5},
    (COND2, "42"): {"sib200": 0.6, "xnli": 0.5},
    (COND2, "123"): {"sib200": 0.7, "xnli": 0.5},
    (COND2, "456"): {"sib200": 0.8, "xnli": 0.6},
    (COND5, "42"): {"sib200": 0.3, "xnli": 0.6},
}
STRICT = {"baseline": 0.5, COND2: 0.4, COND5: 0.6}
INSTR = {"baseline": ("en", "zh"), COND2: ("en", "zh"), COND5: ("en", "zh")}


def cell_rows(bench: str, acc: float, template: str, instr: str) -> list[dict]:
    k = round(acc * N)
    rows = []
    for i in range(N):
        raw = GOLD[bench] if i < k else "???"
        rows.append({"text": f"row {i}", "template": template, "instruction_lang": instr, "raw_output": raw,
                     "pred": raw if i < k else None, "gold": GOLD[bench], "correct": i < k})
    return rows


def session_files(folder: Path, condition: str, seed: str, template: str, skip: set | None = None) -> None:
    skip = skip or set()
    results, summary, rates = {}, {}, {}
    for bench in ("sib200", "xnli"):
        for data in ("en", "zh"):
            for instr in INSTR[condition]:
                key = f"{template}_{bench}_data={data}_instr={instr}"
                if key in skip:
                    continue
                results[key] = cell_rows(bench, REFINED[(condition, seed)][bench], template, instr)
                summary[f"{key}_acc"] = STRICT[condition]
                rates[key] = 0.0
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{condition}_seed{seed}"
    body = {"summary": summary, "parse_failure_rates": rates, **results}
    (folder / f"{stem}_results_{template}.json").write_text(json.dumps(body), encoding="utf-8")
    (folder / f"{stem}_summary_{template}.json").write_text(json.dumps({"summary": summary, "parse_failure_rates": rates}))


def make_published(root: Path, skip: dict | None = None) -> Path:
    for condition, seed in REFINED:
        folder = root / "phase3" / "conditions" / condition / f"seed{seed}"
        for template in ("template1", "template2"):
            session_files(folder, condition, seed, template, (skip or {}).get((condition, seed, template)))
    return root


def run(published: Path, out: Path, *extra: str) -> int:
    return report.main(["--published", str(published), "--out", str(out), "--jobs", "1", "--no-plots",
                        "--bootstrap-resamples", "200", *extra])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    published = make_published(base / "published")
    assert run(published, base / "out") == 0
    return base / "out"


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)


def test_cells_hold_strict_refined_and_n(done):
    cells = tsv(done / "cells.tsv")
    assert list(cells.columns) == ["condition", "seed", "template", "benchmark", "data", "instr", "n", "orig_acc",
                                   "repar_acc", "delta_acc", "orig_pf", "repar_pf", "delta_pf"]
    assert len(cells) == 5 * 2 * 2 * 2 * 2  # sessions x templates x benches x data x instr
    row = cells[(cells.condition == COND2) & (cells.seed == "123") & (cells.benchmark == "sib200")].iloc[0]
    assert (row.n, row.orig_acc, row.repar_acc, row.delta_acc, row.repar_pf) == ("10", "0.4000", "0.7000", "0.3000", "0.3000")
    assert cells.condition.iloc[0] == "baseline" and cells.seed.iloc[0] == "none"


def test_vs_baseline_and_flips(done):
    vs = tsv(done / "vs_baseline_cells.tsv")
    assert len(vs) == 4 * 16  # 4 fine-tuned sessions x 16 cells
    row = vs[(vs.condition == COND2) & (vs.seed == "456") & (vs.benchmark == "sib200")].iloc[0]
    assert (row.baseline_rep, row.cond_rep, row.delta_rep, row.delta_orig) == ("0.5000", "0.8000", "0.3000", "-0.1000")
    flips = tsv(done / "conclusion_flips.tsv")
    # cond-2 SIB: orig -0.1, rep +0.1..+0.3 (loss->win, 3 seeds x 8 cells); cond-2 XNLI seed 456 (+0.1): 8 more;
    # cond-5 SIB: orig +0.1, rep -0.2 (win->loss, 8); cond-5 XNLI rep +0.1 = orig: no flip
    assert (flips.verdict == "loss→win").sum() == 3 * 8 + 8
    assert (flips.verdict == "win→loss").sum() == 8
    assert set(flips[flips.verdict == "win→loss"].condition) == {COND5}


def test_cross_seed_variance(done):
    var = tsv(done / "cross_seed_variance.tsv")
    row = var[(var.condition == COND2) & (var.benchmark == "sib200") & (var.instr == "en") & (var.data == "ALL")].iloc[0]
    assert (row.n_seeds, row.mean_pp, row.sd_pp, row.min_pp, row.max_pp) == ("3", "20.0000", "10.0000", "10.0000", "30.0000")
    assert row.verdict == "robust" and row.seeds == "42,123,456"
    single = var[(var.condition == COND5) & (var.benchmark == "sib200") & (var.data == "ALL")].iloc[0]
    assert single.sd_pp == "" and single.verdict == "cannot be assessed"


def test_t1_and_t4_tables_numbers_and_bold(done):
    t1 = pd.read_csv(done / "tables" / "t1-sib200.csv", dtype=str, keep_default_na=False)
    assert list(t1.columns) == ["Condition", "n_s", "en", "es", "zh", "ur"]
    assert t1.Condition.tolist() == ["Baseline", "Cond 2 (zh, 5k)", "Cond 5 (zh, 5k)"]
    assert t1.iloc[0].tolist() == ["Baseline", "", "50.0", "", "50.0", ""]
    assert t1.iloc[1].tolist() == ["Cond 2 (zh, 5k)", "3", "70.0", "", "70.0", ""]
    tex = (done / "tables.tex").read_text()
    assert r"\label{tab:t1-sib200}" in tex and r"\toprule" in tex
    block = tex.split(r"\label{tab:t4-sib200-delta}")[1].split(r"\end{table}")[0]
    assert r"Cond 2 (zh, 5k) & 3 & \textbf{+20.0} & -- & \textbf{+20.0} & -- \\" in block
    assert r"Cond 5 (zh, 5k) & 1 & \textbf{$-$20.0}" in block
    xnli = tex.split(r"\label{tab:t4-xnli-delta}")[1].split(r"\end{table}")[0]
    assert r"Cond 2 (zh, 5k) & 3 & +3.3 & -- & +3.3 & -- \\" in xnli  # 3.3 pp < 4 pp: not bold
    assert r"\textbf{+10.0}" in xnli


def test_sign_flip_table_rule(done):
    flips = pd.read_csv(done / "tables" / "sib200-sign-flips.csv", dtype=str)
    # only cond-5 has delta_orig > 0 and delta_rep < -0.005 on SIB; cond-2 is negative then positive
    assert flips.values.tolist() == [["Cond 5 (zh, 5k)", "8", "+0.1000", "-0.2000", "0.3000"]]


def test_every_table_has_its_csv(done):
    names = sorted(p.stem for p in (done / "tables").glob("*.csv"))
    tex = (done / "tables.tex").read_text()
    assert len(names) == 22 and tex.count(r"\begin{table}") == 22
    for name in names:
        assert rf"\label{{tab:{name}}}" in tex
    assert {"t1-xnli", "t3-xcsqa", "t4-belebele-delta", "matched-ladder-zh", "cond2-vs-cond5"} <= set(names)


def test_significance_calibrated_by_default(done):
    sig = tsv(done / "significance.tsv")
    assert list(sig.columns) == significance_columns(original=False)
    assert not {"one_sample_p", "sig_bonferroni_prop_z"} & set(sig.columns)
    row = sig[(sig.condition == COND2) & (sig.benchmark == "xnli") & (sig.data == "en") & (sig.instr == "en")].iloc[0]
    # the z uses the 10 rows each cell scored, not XNLI's 5,010
    assert (row.n_per_cell, row.n_known, row.n_examples_cond, row.n_examples_base) == ("10", "5010", "60", "20")
    assert row.delta_pp == "3.33" and row.point_estimate == "False" and row.seed_t_df == "2"
    # seed 456 gets row 5 right where the baseline is wrong: one item of 10 differs, by 2/6 -> p = 1 (exact)
    assert (row.mcnemar_runs, row.mcnemar_runs_p05, row.signflip_items, row.signflip_nonzero) == ("6", "0", "10", "1")
    assert (row.signflip_p, row.signflip_method, row.signflip_diff_pp) == ("1.00000", "exact", "3.33")
    assert row.sig_uncorrected_signflip == "" and row.sig_holm_signflip == ""
    assert row.seed_item_boot_ci_low_pp != "" and row.ci_note == ""
    single = sig[(sig.condition == COND5) & (sig.benchmark == "xnli")].iloc[0]
    assert single.point_estimate == "True" and single.seed_t_p == "" and single.seed_sigma_pp == ""
    assert single.seed_t_note == "one seed: no seed variance to test against"
    assert single.seed_item_boot_ci_low_pp == "" and single.ci_note == "one seed: no seed × item interval"
    # no Welch by default: the original's, on these constant templates, printed t = inf, p = 0
    assert not [c for c in sig.columns if c.startswith("welch")]
    for column in sig.columns:
        assert not sig[column].isin(["inf", "-inf"]).any(), column
    assert not (sig[[c for c in sig.columns if c.endswith("_p")]] == "0.00000").any().any()
    assert len(tsv(done / "mcnemar.tsv")) == 64
    provenance = json.loads((done / "provenance.json").read_text())
    assert provenance["params"]["statistics"] == "calibrated"


def test_no_marker_the_per_run_exact_test_contradicts(tmp_path):
    """A 2 of 10 items gain in every run: pooled z with XNLI's n gave '***'; the paired tests agree there is none."""
    published = make_published(tmp_path / "p")
    assert run(published, tmp_path / "o") == 0
    sig = tsv(tmp_path / "o" / "significance.tsv")
    marked = sig[(sig.sig_uncorrected_signflip != "") | (sig.sig_holm_signflip != "") | (sig.sig_bh_signflip != "")]
    assert (marked.mcnemar_runs_p05.astype(int) > 0).all()
    assert run(published, tmp_path / "orig", "--original-statistics") == 0
    original = tsv(tmp_path / "orig" / "significance.tsv")
    assert (original.sig_bonferroni_prop_z == "***").sum() > 0 and marked.empty


def test_smaller_n_than_the_benchmark_warns_once_per_benchmark(tmp_path, capsys):
    published = make_published(tmp_path / "p")
    assert run(published, tmp_path / "o") == 0
    err = capsys.readouterr().err
    assert err.count("report: significance: sib200 cells scored 10 rows, not the benchmark's 204") == 1
    assert err.count("report: significance: xnli cells scored 10 rows, not the benchmark's 5010") == 1


@pytest.mark.parametrize("flag", ["--original-statistics", "--xnli-n-original"])
def test_original_statistics_reproduce_build_significance(tmp_path, flag):
    published = make_published(tmp_path / "p")
    assert run(published, tmp_path / "o", flag) == 0
    sig = tsv(tmp_path / "o" / "significance.tsv")
    assert list(sig.columns)[:21] == ["condition", "benchmark", "data", "instr", "n_seeds", "n_examples_cond",
                                      "n_examples_base", "baseline_acc", "cond_acc", "delta_pp", "seed_sigma_pp",
                                      "one_sample_t", "one_sample_df", "one_sample_p", "welch_t", "welch_df", "welch_p",
                                      "z_prop", "prop_z_p", "sig_uncorrected_prop_z", "sig_bonferroni_prop_z"]
    row = sig[(sig.condition == COND2) & (sig.benchmark == "xnli") & (sig.data == "en") & (sig.instr == "en")].iloc[0]
    assert (row.n_per_cell, row.n_examples_cond, row.n_examples_base) == ("2505", "15030", "5010")
    cond_obs, base_obs = [0.5, 0.5, 0.5, 0.5, 0.6, 0.6], [0.5, 0.5]
    k_c, k_b = round(sum(cond_obs) * 2505), round(sum(base_obs) * 2505)
    pooled = (k_c + k_b) / (2505 * 8)
    z = (sum(cond_obs) / 6 - 0.5) / math.sqrt(pooled * (1 - pooled) * (1 / (2505 * 6) + 1 / (2505 * 2)))
    assert float(row.z_prop) == pytest.approx(z, abs=5e-4)
    single = sig[(sig.condition == COND5) & (sig.benchmark == "xnli")].iloc[0]
    assert (single.one_sample_df, single.welch_df, single.welch_t) == ("0", "inf", "inf")  # as the original wrote them
    provenance = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert provenance["params"]["statistics"].startswith("original")


def test_misfiled_copy_is_dropped_and_named(tmp_path, capsys):
    published = make_published(tmp_path / "p")
    src = published / "phase3" / "conditions" / COND2 / "seed123"
    dst = published / "phase3" / "conditions" / COND2 / "seed42"
    for path in src.glob("*.json"):
        shutil.copy(path, dst / path.name)
    assert run(published, tmp_path / "o") == 0
    err = capsys.readouterr().err
    assert f"kept phase3/conditions/{COND2}/seed123/{COND2}_seed123_results_template1.json" in err
    assert f"dropped phase3/conditions/{COND2}/seed42/{COND2}_seed123_results_template1.json" in err
    assert len(tsv(tmp_path / "o" / "cells.tsv")) == 80


def test_missing_cells_are_listed_not_fatal(tmp_path, capsys):
    skip = {(COND2, "123", "template2"): {"template2_sib200_data=zh_instr=en"}}
    published = make_published(tmp_path / "p", skip)
    assert run(published, tmp_path / "o") == 0
    missing = tsv(tmp_path / "o" / "missing.tsv")
    cell = missing[(missing.what == "cell") & (missing.condition == COND2) & (missing.benchmark == "sib200")
                   & (missing.data == "zh")]
    assert cell[["seed", "template", "data", "instr"]].values.tolist() == [["123", "template2", "zh", "en"]]
    assert ((missing.what == "incomplete") & (missing.condition == COND2) & (missing.data == "zh")).sum() == 1
    # the full grid's absent benchmarks and instruction languages are listed too
    assert ((missing.what == "cell") & (missing.benchmark == "csqa")).any()
    err = capsys.readouterr().err
    assert f"missing cells of {COND2} seed123 template2: sib200 data=es instr=en" in err
    assert "sib200 data=zh instr=en" in err and "csqa (all 16)" in err
    sig = tsv(tmp_path / "o" / "significance.tsv")
    assert sig[(sig.condition == COND2) & (sig.benchmark == "sib200") & (sig.data == "zh") & (sig.instr == "en")].empty


def test_an_absent_template_or_benchmark_rows_are_listed(tmp_path):
    published = make_published(tmp_path / "p")
    folder = published / "phase3" / "conditions" / COND5 / "seed42"
    for kind in ("results", "summary"):  # COND5 seed42 has no template2 files at all
        (folder / f"{COND5}_seed42_{kind}_template2.json").unlink()
    results = published / "phase3" / "conditions" / COND2 / "seed42" / f"{COND2}_seed42_results_template1.json"
    body = json.loads(results.read_text())
    results.write_text(json.dumps({k: v for k, v in body.items() if "_xnli_" not in k}))  # its summary keeps xnli
    assert run(published, tmp_path / "o") == 0
    missing = tsv(tmp_path / "o" / "missing.tsv")
    gone = missing[(missing.condition == COND5) & (missing.template == "template2")]
    assert set(gone.what) >= {"strict", "refined"}
    rows = missing[(missing.condition == COND2) & (missing.seed.astype(str) == "42") & (missing.what == "scoring")]
    assert set(rows.benchmark) == {"xnli"} and len(rows[rows.detail.str.startswith("no refined accuracy")]) == 4
    assert len(rows[rows.detail.str.startswith("no per-example rows")]) == 4


def test_an_off_grid_language_names_the_file_and_cell(tmp_path, capsys):
    published = make_published(tmp_path / "p")
    bad = published / "phase3" / "conditions" / COND5 / "seed42" / f"{COND5}_seed42_summary_template1.json"
    bad.write_text(json.dumps({"summary": {"template1_sib200_data=en_instr=fr_acc": 0.5}}))
    assert run(published, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "template1_sib200_data=en_instr=fr" in err and "'fr'" in err and "Traceback" not in err


@pytest.mark.parametrize("body, message", [
    ("{not json", "malformed or truncated JSON"),
    (json.dumps({"parse_failure_rates": {}}), "no 'summary' object"),
    (json.dumps({"summary": {"template1_sib200_data=en_instr=xx1_acc": 0.5}}), "unknown cell key"),
])
def test_malformed_file_names_the_file(tmp_path, capsys, body, message):
    published = make_published(tmp_path / "p")
    bad = published / "phase3" / "conditions" / COND5 / "seed42" / f"{COND5}_seed42_summary_template1.json"
    bad.write_text(body)
    assert run(published, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert str(bad) in err and message in err


def test_two_runs_write_identical_bytes(tmp_path):
    published = make_published(tmp_path / "p")
    outs = []
    for name in ("a", "b"):
        assert report.main(["--published", str(published), "--out", str(tmp_path / name), "--jobs", "2",
                            "--bootstrap-resamples", "200"]) == 0
        outs.append({p.relative_to(tmp_path / name): p.read_bytes() for p in sorted((tmp_path / name).rglob("*")) if p.is_file()})
    assert outs[0] == outs[1]
    assert Path("metrics.json") in outs[0] and Path("provenance.json") in outs[0]


def test_a_late_failure_leaves_the_previous_report_whole(tmp_path, monkeypatch, capsys):
    published, out = make_published(tmp_path / "p"), tmp_path / "reports"
    assert run(published, out) == 0
    (out / "README.md").write_text("not the report's")
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    def late(*args, **kwargs):  # after cells.tsv, metrics.json and tables.tex are written
        raise ReportError("injected late failure")

    monkeypatch.setattr(phase3_report, "write_analyses", late)
    assert run(published, out, "--bootstrap-seed", "7") == 1
    assert "injected late failure" in capsys.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "reports"]  # no staging folder left behind
    monkeypatch.undo()
    assert run(published, out, "--bootstrap-seed", "7") == 0
    assert (out / "README.md").read_text() == "not the report's"
    assert (out / "significance.tsv").read_bytes() != before[Path("significance.tsv")]


def test_a_negative_resample_count_is_one_line_and_writes_nothing(tmp_path, capsys):
    published = make_published(tmp_path / "p")
    assert run(published, tmp_path / "o", "--bootstrap-resamples", "-5") != 0
    err = capsys.readouterr().err
    assert "--bootstrap-resamples" in err and "-5" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_metrics_json_is_nested_by_benchmark_then_condition(done):
    data = json.loads((done / "metrics.json").read_text())
    assert data["sib200"]["baseline"]["acc_refined"] == 0.5
    assert data["sib200"][COND2] == {"acc_refined": 0.7, "acc_strict": 0.4, "delta_refined": 0.2, "delta_strict": -0.1,
                                     "n_seeds": 3, "seed_sd_refined": 0.1}


def test_params_mode_reads_expected_files_only(tmp_path, capsys):
    eval_dir = make_published(tmp_path / "eval")
    # a loglik summary for one cond-2 session: the scoring comparison shows it
    folder = eval_dir / "phase3" / "conditions" / COND2 / "seed42"
    for template in ("template1", "template2"):
        strict = json.loads((folder / f"{COND2}_seed42_summary_{template}.json").read_text())
        (folder / f"{COND2}_seed42_summary_loglik_{template}.json").write_text(json.dumps(strict))
    # a stray folder the params do not list must be ignored (no globbing)
    shutil.copytree(eval_dir / "phase3" / "conditions" / COND5, eval_dir / "phase3" / "conditions" / "condition-9-xx-5k")
    from stages.lib.params import EvalSession
    from stages.lib.results_index import expected_from_params

    def session(condition, seed):  # made-up outs: the folders are the layout's, under eval_dir
        return EvalSession(condition=condition, seed=seed, weights="models/x", out="x", reparsed="x")

    sessions = {"baseline": session("baseline", None)}
    sessions |= {f"{COND2}-seed{s}": session(COND2, s) for s in (42, 123, 456, 7)}
    index = expected_from_params(sessions, eval_dir)
    assert {s.condition for s in index.sessions} == {"baseline", COND2}
    assert any(m["seed"] == "7" and m["what"] == "strict" for m in index.missing)


def test_params_cli_on_the_repository_params(tmp_path, capsys):
    eval_dir = make_published(tmp_path / "eval")
    code = report.main(["--params", str(ROOT / "params.yaml"), "--eval-dir", str(eval_dir), "--out", str(tmp_path / "o"),
                        "--jobs", "1", "--no-plots", "--bootstrap-resamples", "100"])
    assert code == 0
    missing = tsv(tmp_path / "o" / "missing.tsv")
    assert "condition-1-en-5k" in set(missing.condition)  # listed in params, absent on disk
    assert "condition-5-zh-5k-c4ai-aya-expanse-32b" in set(tsv(tmp_path / "o" / "cells.tsv").condition)
    comparison = tsv(tmp_path / "o" / "scoring_comparison.tsv")
    assert list(comparison.columns)[:7] == ["condition", "benchmark", "n_cells", "n_cells_loglik", "delta_strict",
                                            "delta_refined", "delta_loglik"]


def test_scoring_comparison_with_loglik(tmp_path):
    published = make_published(tmp_path / "p")
    for condition, seed in REFINED:
        folder = published / "phase3" / "conditions" / condition / f"seed{seed}"
        for template in ("template1", "template2"):
            strict = json.loads((folder / f"{condition}_seed{seed}_summary_{template}.json").read_text())
            strict["summary"] = {k: 0.9 if condition != "baseline" else 0.8 for k in strict["summary"]}
            (folder / f"{condition}_seed{seed}_summary_loglik_{template}.json").write_text(json.dumps(strict))
    assert run(published, tmp_path / "o") == 0
    comparison = tsv(tmp_path / "o" / "scoring_comparison.tsv")
    row = comparison[(comparison.condition == COND5) & (comparison.benchmark == "sib200")].iloc[0]
    assert (row.delta_strict, row.delta_refined, row.delta_loglik, row.agree) == ("0.1000", "-0.2000", "0.1000", "False")
    assert "acc_loglik" in (tmp_path / "o" / "runs.csv").read_text().splitlines()[0]


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    published = make_published(tmp_path / "p")
    assert report.main(["--published", str(published), "--out", str(tmp_path / "o"), "--jobs", "1",
                        "--bootstrap-resamples", "100"]) == 0
    names = {p.name for p in (tmp_path / "o" / "plots").iterdir()}
    for figure in ("deltas_by_prompt", "strict_vs_refined", "extractor_slopegraph", "cell_scatter", "signflip_slopegraph"):
        assert {f"{figure}.png", f"{figure}.pdf", f"{figure}.svg"} <= names, figure
    assert {"seed_spread.tsv", "strict_vs_refined.tsv"} <= names
    first = {p.name: p.read_bytes() for p in (tmp_path / "o" / "plots").iterdir()}
    assert report.main(["--published", str(published), "--out", str(tmp_path / "o"), "--jobs", "1",
                        "--bootstrap-resamples", "100"]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "o" / "plots").iterdir()} == first  # byte-identical rerun


def test_module_runs_as_a_command(tmp_path):
    published = make_published(tmp_path / "p")
    done = subprocess.run([sys.executable, "-m", "stages.report", "--published", str(published), "--out", str(tmp_path / "o"),
                           "--no-plots", "--jobs", "1", "--bootstrap-resamples", "100"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "runs.csv").is_file()
    assert discover_published(published).notices == []
    with pytest.raises(ReportError, match="no phase3/conditions"):
        discover_published(tmp_path)


def test_bootstrap_paired_mean_matches_index_resampling_and_is_seeded():
    """stats.bootstrap_paired_mean (added for the report's per-example CIs) against the index bootstrap."""
    import numpy as np

    from stages.lib.stats import StatsError, bootstrap_mean_diff, bootstrap_paired_mean

    rng = np.random.default_rng(1)
    diffs = rng.choice([-1.0, 0.0, 0.0, 0.5, 1.0], size=2000)
    counts = bootstrap_paired_mean(diffs, seed=3, n_resamples=20_000)
    index = bootstrap_mean_diff(diffs, np.zeros_like(diffs), seed=3, n_resamples=20_000, paired=True)
    assert counts.estimate == pytest.approx(diffs.mean())
    assert counts.low == pytest.approx(index.low, abs=0.004) and counts.high == pytest.approx(index.high, abs=0.004)
    assert bootstrap_paired_mean(diffs, seed=3) == bootstrap_paired_mean(diffs, seed=3)
    with pytest.raises(StatsError):
        bootstrap_paired_mean([], seed=0)


def test_without_rows_the_paired_columns_are_empty_with_a_note(tmp_path):
    published = make_published(tmp_path / "p")
    assert run(published, tmp_path / "o", "--no-rows") == 0
    sig = tsv(tmp_path / "o" / "significance.tsv")
    assert set(sig.signflip_p) == {""} and set(sig.signflip_note) == {"no per-example rows"}
    assert set(sig.item_boot_ci_low_pp) == {""} and set(sig.sig_uncorrected_signflip) == {""}
    assert (tmp_path / "o" / "mcnemar.tsv").read_text().count("\n") == 1  # the header only


def test_ambiguous_duplicate_is_fatal(tmp_path, capsys):
    published = make_published(tmp_path / "p")
    src = published / "phase3" / "conditions" / COND2 / "seed123" / f"{COND2}_seed123_summary_template1.json"
    for seed in ("42", "456"):
        shutil.copy(src, published / "phase3" / "conditions" / COND2 / f"seed{seed}" / src.name)
    src.unlink()
    assert run(published, tmp_path / "o") == 1
    assert "no single copy sits in condition-2-zh-5k/seed123/" in capsys.readouterr().err
