"""stages/lib/stats.py against hand-computed values and scipy called directly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stages.lib import stats as st


def _runs(values: dict[tuple[str, object, str], float], benchmark="sib200", data="zh", instr="en", n=None) -> pd.DataFrame:
    n = n or st.N_EXAMPLES[benchmark]
    return pd.DataFrame(
        [
            {"condition": c, "seed": s, "template": t, "benchmark": benchmark, "data_lang": data, "instr_lang": instr, "acc": v,
             "n": n}
            for (c, s, t), v in values.items()
        ]
    )


COND = {
    ("cond-a", 42, "template1"): 0.50, ("cond-a", 42, "template2"): 0.60,
    ("cond-a", 123, "template1"): 0.52, ("cond-a", 123, "template2"): 0.56,
    ("cond-a", 456, "template1"): 0.60, ("cond-a", 456, "template2"): 0.62,
    ("cond-b", 42, "template1"): 0.40, ("cond-b", 42, "template2"): 0.44,
    ("baseline", "none", "template1"): 0.45, ("baseline", "none", "template2"): 0.47,
}  # fmt: skip


def test_n_examples_true_by_default_and_original_behind_flag():
    assert st.n_examples("xnli") == 5010
    assert st.n_examples("xnli", xnli_n_original=True) == 2505
    assert [st.n_examples(b, xnli_n_original=True) for b in ("sib200", "csqa", "belebele")] == [204, 1000, 900]
    with pytest.raises(st.StatsError, match="mgsm"):
        st.n_examples("mgsm")


def test_templates_collapse_before_seed_sd():
    out = st.seed_stats(_runs(COND)).set_index("condition")
    per_seed = [0.55, 0.54, 0.61]  # template means of seeds 42, 123, 456
    assert out.loc["cond-a", "mean"] == pytest.approx(np.mean(per_seed))
    assert out.loc["cond-a", "sd"] == pytest.approx(np.std(per_seed, ddof=1))
    six = [0.50, 0.60, 0.52, 0.56, 0.60, 0.62]
    assert out.loc["cond-a", "sd"] != pytest.approx(np.std(six, ddof=1))  # not the uncollapsed sd
    half = sps.t.ppf(0.975, 2) * np.std(per_seed, ddof=1) / math.sqrt(3)
    assert out.loc["cond-a", "ci_low"] == pytest.approx(np.mean(per_seed) - half)
    assert out.loc["cond-a", "ci_high"] == pytest.approx(np.mean(per_seed) + half)
    assert out.loc["cond-a", "n_seeds"] == 3 and not out.loc["cond-a", "point_estimate"]


def test_single_seed_is_a_point_estimate():
    out = st.seed_stats(_runs(COND)).set_index("condition")
    for condition in ("cond-b", "baseline"):
        assert out.loc[condition, "point_estimate"]
        assert out.loc[condition, "n_seeds"] == 1
        assert pd.isna(out.loc[condition, "sd"]) and pd.isna(out.loc[condition, "ci_low"])
        assert pd.isna(out.loc[condition, "ci_high"])
    assert out.loc["cond-b", "mean"] == pytest.approx(0.42)
    sig = st.significance_table(_runs(COND), original=True).set_index("condition")
    assert sig.loc["cond-b", "point_estimate"]
    assert math.isnan(sig.loc["cond-b", "one_sample_p"]) and math.isnan(sig.loc["cond-b", "seed_sigma_pp"])
    assert sig.loc["cond-b", "one_sample_df"] == 0  # the original writes df 0, not NaN, for one seed
    assert not sig.loc["cond-a", "point_estimate"] and not math.isnan(sig.loc["cond-a", "one_sample_p"])
    calibrated = st.significance_table(_runs(COND)).set_index("condition")
    assert math.isnan(calibrated.loc["cond-b", "seed_t_p"]) and calibrated.loc["cond-b", "seed_t_note"].startswith("one seed")
    assert not math.isnan(calibrated.loc["cond-a", "seed_t_p"]) and calibrated.loc["cond-a", "seed_t_note"] == ""


def test_coarser_cell_averages_data_languages_and_templates():
    runs = pd.concat([_runs(COND, data="zh"), _runs({k: v + 0.1 for k, v in COND.items()}, data="es")])
    out = st.seed_stats(runs, cell=("benchmark", "instr_lang")).set_index("condition")
    per_seed = [0.60, 0.59, 0.66]
    assert out.loc["cond-a", "sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert out.loc["cond-a", "mean"] == pytest.approx(np.mean(per_seed))


def test_duplicate_and_uneven_templates_are_errors():
    runs = _runs(COND)
    with pytest.raises(st.StatsError, match="duplicated row: condition=cond-a, seed=42"):
        st.collapse_templates(pd.concat([runs, runs.iloc[[0]]]))
    uneven = runs.drop(index=runs.index[(runs["seed"] == 123) & (runs["template"] == "template2")])
    with pytest.raises(st.StatsError, match="seed=123"):
        st.seed_stats(uneven)


def test_original_tests_match_scipy_and_hand_values():
    sig = st.significance_table(_runs(COND), original=True).set_index("condition")
    row = sig.loc["cond-a"]
    cond_obs = [0.50, 0.60, 0.52, 0.56, 0.60, 0.62]
    base_obs = [0.45, 0.47]
    per_seed = [0.55, 0.54, 0.61]
    one = sps.ttest_1samp(per_seed, popmean=0.46)
    assert (row["one_sample_t"], row["one_sample_df"], row["one_sample_p"]) == pytest.approx((one.statistic, 2, one.pvalue))
    welch = sps.ttest_ind(cond_obs, base_obs, equal_var=False)
    assert (row["welch_t"], row["welch_p"]) == pytest.approx((welch.statistic, welch.pvalue))
    va, vb = np.var(cond_obs, ddof=1) / 6, np.var(base_obs, ddof=1) / 2
    assert row["welch_df"] == pytest.approx((va + vb) ** 2 / (va**2 / 5 + vb**2 / 1))
    # pooled z by hand: n = 204 per observation
    k_c, k_b = round(sum(cond_obs) * 204), round(sum(base_obs) * 204)
    pooled = (k_c + k_b) / (204 * 8)
    z = (np.mean(cond_obs) - 0.46) / math.sqrt(pooled * (1 - pooled) * (1 / (204 * 6) + 1 / (204 * 2)))
    assert row["z_prop"] == pytest.approx(z)
    assert row["prop_z_p"] == pytest.approx(2 * sps.norm.sf(abs(z)))
    assert (row["n_examples_cond"], row["n_examples_base"]) == (1224, 408)
    assert row["delta_pp"] == pytest.approx((np.mean(cond_obs) - 0.46) * 100)
    assert row["seed_sigma_pp"] == pytest.approx(np.std(per_seed, ddof=1) * 100)


def test_welch_df_is_inf_when_both_variances_vanish():
    assert st.welch_df([0.5, 0.5], [0.4, 0.4]) == math.inf
    assert math.isnan(st.prop_z([0.0, 0.0], [0.0, 0.0], 100).z)


def test_original_statistics_use_xnli_n_2505_and_the_default_the_rows_scored():
    runs = _runs({("cond-x", 42, "template1"): 0.36, ("cond-x", 42, "template2"): 0.35,
                  ("baseline", "none", "template1"): 0.34, ("baseline", "none", "template2"): 0.34}, benchmark="xnli")  # fmt: skip
    true = st.significance_table(runs).iloc[0]
    orig = st.significance_table(runs, original=True).iloc[0]
    assert (true["n_per_cell"], orig["n_per_cell"]) == (5010, 2505)
    assert true["z_prop"] == pytest.approx(orig["z_prop"] * math.sqrt(2), rel=1e-3)  # √2, up to k rounding
    assert true["prop_z_p"] < 0.05 < orig["prop_z_p"]
    assert orig["sig_uncorrected_prop_z"] == "" and "sig_uncorrected_prop_z" not in true  # no marker from an unpaired z


def test_markers_and_bonferroni_over_the_whole_family():
    assert [st.significance_marker(p) for p in (0.009, 0.01, 0.049, 0.05, math.nan)] == ["**", "*", "*", "", ""]
    sig = st.significance_table(_runs(COND), original=True)
    assert len(sig) == 2 and list(sig["condition"]) == ["cond-a", "cond-b"]
    threshold = 0.05 / 2
    assert list(sig["sig_bonferroni_prop_z"]) == ["***" if p < threshold else "" for p in sig["prop_z_p"]]
    assert sig["sig_bonferroni_prop_z"].iloc[0] == "***"  # Δ = +10 pp on 1,224 vs 408 rows


def test_missing_baseline_cell_is_named():
    runs = pd.concat([_runs(COND), _runs({("cond-a", 42, "template1"): 0.5, ("cond-a", 42, "template2"): 0.5}, data="ur")])
    with pytest.raises(st.StatsError, match="data_lang=ur"):
        st.significance_table(runs)


def test_holm_and_bh_on_a_known_vector():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005·4=0.02, 0.01·3=0.03, 0.03·2=0.06, 0.04·1=0.04 → running max 0.06
    assert st.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted 0.005·4/1=0.02, 0.01·4/2=0.02, 0.03·4/3=0.04, 0.04·4/4=0.04 → running min from the top
    assert st.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert st.bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    with_nan = st.holm([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx([0.02, 0.04])


def test_mcnemar_on_a_hand_made_discordant_table():
    # 10 rows: both right 3, cond only 5, base only 1, both wrong 1
    cond = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    base = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    res = st.mcnemar_exact(cond, base)
    assert (res.n, res.cond_only, res.base_only) == (10, 5, 1)
    assert res.p == pytest.approx(2 * (1 + 6) / 2**6)  # exact two-sided binomial, b + c = 6
    assert st.mcnemar_exact([1, 0], [1, 0]).p == 1.0
    with pytest.raises(st.StatsError, match="length"):
        st.mcnemar_exact([1, 0], [1])


def test_mcnemar_table_pairs_rows_with_the_baselines_cell():
    def rows(condition, seed, correct):
        return [
            {"condition": condition, "seed": seed, "template": "template1", "benchmark": "csqa", "data_lang": "en",
             "instr_lang": "en", "row": i, "correct": bool(c)}
            for i, c in enumerate(correct)
        ]  # fmt: skip

    base = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    examples = pd.DataFrame(rows("baseline", "none", base) + rows("cond-a", 123, [1] * 8 + [0, 0]) + rows("cond-a", 42, base))
    table = st.mcnemar_table(examples.sample(frac=1, random_state=0))  # order of input rows is irrelevant
    assert list(table["seed"]) == [42, 123]
    assert list(table["mcnemar_p"]) == pytest.approx([1.0, 14 / 64])
    assert list(table["mcnemar_p_holm"]) == pytest.approx([1.0, 28 / 64])
    with pytest.raises(st.StatsError, match="do not match"):
        st.mcnemar_table(examples.drop(index=examples.index[(examples["seed"] == 42) & (examples["row"] == 3)]))


def test_bootstrap_is_deterministic_with_a_seed_and_covers_the_estimate():
    x, y = [0.5, 0.6, 0.55, 0.62, 0.58], [0.45, 0.47, 0.44]
    a = st.bootstrap_mean_diff(x, y, seed=7, n_resamples=2000)
    b = st.bootstrap_mean_diff(x, y, seed=7, n_resamples=2000)
    c = st.bootstrap_mean_diff(x, y, seed=8, n_resamples=2000)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == pytest.approx(np.mean(x) - np.mean(y))
    assert a.low < a.estimate < a.high
    # by hand, the same draws
    rng = np.random.default_rng(7)
    ia, ib = rng.integers(0, 5, size=(2000, 5)), rng.integers(0, 3, size=(2000, 3))
    diffs = np.asarray(x)[ia].mean(1) - np.asarray(y)[ib].mean(1)
    assert (a.low, a.high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))


def test_paired_bootstrap_of_a_constant_shift_has_zero_width():
    x = [0.1, 0.5, 0.9, 0.3]
    ci = st.bootstrap_mean_diff(x, [v - 0.2 for v in x], seed=1, n_resamples=500, paired=True)
    assert (ci.low, ci.high) == pytest.approx((0.2, 0.2))
    with pytest.raises(st.StatsError, match="equal lengths"):
        st.bootstrap_mean_diff([1, 2], [1], seed=1, paired=True)


def test_robustness_verdicts():
    assert st.robustness([0.05, 0.06, 0.055]) == "robust"
    assert st.robustness([0.01, -0.02, 0.015]) == "within noise"
    assert st.robustness([0.05]) == "cannot be assessed"


# --- issue 17: significance applied correctly -----------------------------------------------------------


def test_default_z_uses_the_rows_scored_and_names_benchmarks_whose_size_differs():
    # a 2-item difference out of 12 rows: the paper's n = 204 made it look like 17 pp on 1,224 answers
    values = {("cond-a", 42, "template1"): 9 / 12, ("cond-a", 42, "template2"): 9 / 12,
              ("baseline", "none", "template1"): 7 / 12, ("baseline", "none", "template2"): 7 / 12}  # fmt: skip
    runs = _runs(values, n=12)
    row = st.significance_table(runs).iloc[0]
    assert (row["n_per_cell"], row["n_known"], row["n_examples_cond"]) == (12, 204, 24)
    assert row["prop_z_p"] > 0.05
    assert st.significance_table(runs, original=True).iloc[0]["prop_z_p"] < 0.001  # the original's n = 204
    assert st.n_mismatches(runs) == {"sib200": [12]}
    assert st.n_mismatches(_runs(values)) == {}


def test_runs_of_one_cell_with_different_n_are_an_error_naming_the_cell():
    runs = _runs(COND)
    runs.loc[runs["condition"] == "baseline", "n"] = 200
    with pytest.raises(st.StatsError, match=r"different rows \(\[200, 204\]\): benchmark=sib200, data_lang=zh, instr_lang=en"):
        st.significance_table(runs)
    runs.loc[0, "n"] = None
    with pytest.raises(st.StatsError, match="no row count n for condition=cond-a, seed=42"):
        st.significance_table(runs)


def test_degenerate_tests_are_nan_with_a_note_never_p_zero():
    # constant sides: scipy's Welch gives t = -6.9e15 and p = 1e-78 here (rounding); the original prints it
    assert abs(st.welch_t([0.1] * 6, [0.1429] * 2).statistic) > 1e14
    # a single-seed condition whose templates agree, against a baseline whose templates agree
    runs = _runs({("cond-b", 42, "template1"): 0.1, ("cond-b", 42, "template2"): 0.1,
                  ("baseline", "none", "template1"): 0.1429, ("baseline", "none", "template2"): 0.1429})  # fmt: skip
    row = st.significance_table(runs).iloc[0]
    assert not [c for c in row.index if c.startswith(("welch", "one_sample"))]  # the calibrated set has neither
    assert math.isnan(row["seed_t"]) and math.isnan(row["seed_t_p"]) and row["seed_t_note"].startswith("one seed")
    # seeds that agree (a constant group, found by value, not by an infinite t)
    same = st.prediction_t([0.1 + 0.2] * 3, 0.1)
    assert math.isnan(same.p) and same.note.startswith("seeds identical")
    original = st.significance_table(runs, original=True).iloc[0]
    assert original["welch_df"] == math.inf and original["welch_p"] < 1e-50  # faithful to the original's file


def test_seed_t_counts_the_baselines_own_noise():
    per_seed, base = [0.55, 0.54, 0.61], 0.46
    res = st.prediction_t(per_seed, base)
    t = (np.mean(per_seed) - base) / (np.std(per_seed, ddof=1) * math.sqrt(1 + 1 / 3))
    assert (res.statistic, res.df, res.p) == pytest.approx((t, 2, 2 * sps.t.sf(abs(t), 2)))
    assert res.p > st.one_sample_t(per_seed, base).p  # the one-sample t takes the baseline as exact
    assert st.prediction_t([0.5, 0.5, 0.5], 0.4).note.startswith("seeds identical")
    assert math.isnan(st.prediction_t([0.5, 0.5, 0.5], 0.4).p)
    assert math.isnan(st.one_sample_t([0.5, 0.5, 0.5], 0.4).statistic) is False  # the original's: inf


def test_sign_flip_counts_items_not_seed_template_copies():
    # X-CSQA-sized: one run, 30 items only the condition gets right and 18 only the baseline; copied to 3 seeds ×
    # 2 templates, the pooled McNemar of the old report counted 6·48 discordant pairs (p = 2.6e-5)
    base = np.zeros(1000, dtype=bool)
    base[30:48] = True
    cond = np.zeros(1000, dtype=bool)
    cond[:30] = True
    single = st.mcnemar_exact(cond, base)
    assert single.p == pytest.approx(0.111, abs=5e-4)
    pooled = st.mcnemar_exact(np.tile(cond, 6), np.tile(base, 6))
    assert pooled.p < 1e-4
    res = st.sign_flip_test(np.tile(cond, (6, 1)), np.tile(base, (2, 1)), seed=0)
    assert res.method == "exact" and (res.n, res.nonzero) == (1000, 48)
    assert res.p == pytest.approx(single.p, rel=1e-9)
    assert res.mean_diff == pytest.approx(12 / 1000)


def test_sign_flip_matches_scipy_exact_and_monte_carlo():
    rng = np.random.default_rng(5)
    ability = rng.beta(2, 2, size=14)
    cond, base = rng.random((6, 14)) < ability, rng.random((2, 14)) < ability + 0.2
    diffs = cond.mean(0) - base.mean(0)
    exact = sps.permutation_test((diffs,), np.sum, permutation_type="samples", n_resamples=np.inf).pvalue
    res = st.sign_flip_test(cond, base, seed=1)
    assert res.method == "exact" and res.p == pytest.approx(exact, rel=1e-9)
    # XNLI-sized: resampled binomials against scipy's own resampling of 5,010 signs
    ability = rng.beta(2, 2, size=5010)
    cond, base = rng.random((6, 5010)) < ability + 0.01, rng.random((2, 5010)) < ability
    res = st.sign_flip_test(cond, base, seed=1, n_resamples=4000)
    diffs = cond.mean(0) - base.mean(0)
    ref = sps.permutation_test((diffs,), np.sum, permutation_type="samples", n_resamples=4000, random_state=2).pvalue
    assert res.method == "monte carlo" and res.p == pytest.approx(ref, abs=0.03)
    assert res == st.sign_flip_test(cond, base, seed=1, n_resamples=4000)  # seeded: same p
    assert st.sign_flip_test(cond[:, :1], cond[:2, :1], seed=0).p == 1.0  # nothing differs: p = 1, not 0
    far = st.sign_flip_test(np.ones((6, 5010), bool), np.zeros((2, 5010), bool), seed=0)
    assert far.method == "monte carlo" and far.p == 1 / 10_001  # (1 + 0) / (1 + resamples): never 0
    with pytest.raises(st.StatsError, match="12 items, the baseline 10"):
        st.sign_flip_test(np.ones((2, 12)), np.ones((2, 10)), seed=0)


def test_seed_item_bootstrap_matches_index_resampling_and_counts_seed_variance():
    rng = np.random.default_rng(3)
    items = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], p=[0.05, 0.1, 0.6, 0.15, 0.1], size=300)
    per_seed = np.stack([items, np.roll(items, 7), np.where(rng.random(300) < 0.2, 1.0, items)])
    got = st.bootstrap_seed_item(per_seed, seed=4, n_resamples=20_000)
    si = rng.integers(0, 3, size=(20_000, 3))
    ii = rng.integers(0, 300, size=(20_000, 300))
    means = np.array([per_seed[s][:, i].mean() for s, i in zip(si, ii)])
    assert (got.low, got.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), abs=0.008)  # lumpy: 10 seed draws
    assert got == st.bootstrap_seed_item(per_seed, seed=4, n_resamples=20_000)
    only_items = st.bootstrap_paired_mean(per_seed.mean(0), seed=4, n_resamples=20_000)
    assert got.high - got.low > only_items.high - only_items.low
    with pytest.raises(st.StatsError, match="two seeds"):
        st.bootstrap_seed_item(per_seed[:1], seed=0)


def test_markers_come_from_the_given_p_over_the_non_nan_family():
    table = pd.DataFrame({"p": [0.001, 0.02, 0.04, math.nan, 0.3]})
    out = st.add_markers(table, "p", "test")
    assert list(out["sig_uncorrected_test"]) == ["**", "*", "*", "", ""]
    assert list(out["p_holm"][[0, 1, 2, 4]]) == pytest.approx([0.004, 0.06, 0.08, 0.3])  # m = 4, not 5
    assert list(out["sig_holm_test"]) == ["***", "", "", "", ""]
    assert list(out["sig_bh_test"]) == ["fdr", "fdr", "", "", ""]  # BH: 0.004, 0.04, 0.0533, 0.3
