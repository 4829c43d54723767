"""stages.lib.analyses: the original's four published analyses on hand-made rows and cells."""

from __future__ import annotations

import pandas as pd

from stages.lib import analyses
from stages.lib.results_index import ROW_COLUMNS


def rows(condition, seed, bench, pairs, template=1, data="en", instr="en"):
    return [(condition, seed, template, bench, data, instr, gold, raw) for gold, raw in pairs]


def frame(*parts):
    return pd.DataFrame([r for part in parts for r in part], columns=ROW_COLUMNS)


def test_xnli_label_distributions_count_tiers_and_skip_other_conditions():
    pairs = [("entailment", "entailment"), ("entailment", "\u7b54\u6848\u662fentailment"), ("neutral", "entailment"),
             ("neutral", "\u4e24\u8005\u6ca1\u6709\u4efb\u4f55\u5173\u7cfb"), ("contradiction", "???"), ("contradiction", "\u77db\u76fe")]
    out = analyses.xnli_label_distributions(frame(rows("baseline", "none", "xnli", pairs),
                                                  rows("condition-2-es-20k", "42", "xnli", pairs)))
    assert list(out["gold"]) == ["entailment", "contradiction", "neutral"]  # 20k is not in the original's set
    e, c, n = (out.iloc[i] for i in range(3))
    assert (e.n_gold, e.pred_entailment, e.acc_on_gold, e.via_tier1a_english, e.via_tier2_glued) == (2, 2, 1.0, 1, 1)
    assert e.tier2_pred_entailment == 1 and e.tier2_cjk_frame == 1
    assert (c.pred_none, c.pred_contradiction, c.via_tier1b_native, c.acc_on_gold) == (1, 1, 1, 0.5)
    assert (n.pred_entailment, n.pred_neutral, n.via_tier3_paraphrase) == (1, 1, 1)


def test_sib200_category_accuracy_per_gold_slice():
    pairs = [("travel", "travel"), ("travel", "sports, travel"), ("sports", "\u0633\u0627\u0626\u0646\u0633")]
    out = analyses.sib200_category_accuracy(frame(rows("condition-5-es-5k", "42", "sib200", pairs)))
    travel = out[out["gold_category"] == "travel"].iloc[0]
    sports = out[out["gold_category"] == "sports"].iloc[0]
    assert (travel.n_gold, travel.correct, travel.pred_travel, travel.pred_none) == (2, 1, 1, 1)
    assert (sports.correct, sports.pred_science_technology) == (0, 1) and len(out) == 7


def test_correct_via_constant_first_seen_wins_a_tie_and_raw_lines_fold_whitespace():
    pairs = [("travel", "travel\nbecause"), ("sports", "sports"), ("travel", "travel  "), ("sports", "sports"),
             ("health", "travel")]
    out = analyses.correct_via_constant(frame(rows("condition-1-en-5k", "42", "sib200", pairs))).iloc[0]
    assert (out.top_pred, out.top_pred_count, out.top_raw, out.top_raw_count) == ("travel", 3, "travel", 3)
    assert (out.correct_count, out.correct_via_constant_pred_count, out.correct_via_constant_raw_count) == (4, 2, 2)
    assert out.accuracy == 0.8 and out.correct_via_constant_pred_pct == 0.5


def cells(*specs):
    rows = [{"condition": c, "seed": s, "template": t, "benchmark": "xnli", "data_lang": "ur", "instr_lang": "ur",
             "acc_refined": a, "n": 10} for c, s, t, a in specs]
    return analyses.framework_cells(pd.DataFrame(rows))


def test_framework_axes():
    c = cells(("baseline", "none", 1, 0.5), ("baseline", "none", 2, 0.4), ("condition-2-ur-5k", "42", 1, 0.6),
              ("condition-2-ur-5k", "123", 1, 0.7), ("condition-2-ur-20k", "42", 1, 0.9),
              ("condition-5-ur-5k-c4ai-aya-expanse-32b", "42", 1, 0.3))
    t = analyses.template_comparison(c)
    assert list(t["delta_t2_t1"]) == ["-0.1000"] and t.iloc[0].t1_correct == 5
    same = analyses.same_language_comparison(c)
    ur = same[(same["target_lang"] == "ur") & (same["template"] == "1")]
    assert list(ur["condition"]) == ["baseline", "condition-2-ur-5k", "condition-2-ur-20k", "condition-5-ur-5k-c4ai-aya-expanse-32b"]
    assert abs(ur.iloc[1].mean_acc_across_seeds - 0.65) < 1e-12 and ur.iloc[1].n_seeds == 2 and ur.iloc[1].matched_instr_for_this_condition == "y"
    vol = analyses.data_volume_comparison(c).iloc[0]
    assert (vol.family, vol.n_seeds_5k, vol.delta_20k_minus_5k) == ("condition-2-ur", 2, "+0.2500")
