"""Statistics of the report: pure functions over tidy tables.

Reads nothing, writes nothing, draws no random number without a seed given by the caller. Inputs are
tidy ``pandas`` tables, one row per observation, with the columns named in :data:`RUN_COLUMNS`
(``condition, seed, template, benchmark, data_lang, instr_lang`` and a value such as ``acc``); outputs
are tidy tables with sorted rows, or small frozen dataclasses. Rounding to the published precision is
the writer's job, not this module's: values come back unrounded.

Two sets of significance tests (``significance_table(original=...)``):

- ``original=True`` keeps ``build_significance.py`` exactly, so the published p values come back: seed
  statistics over template means, the one-sample t of the per-seed means against the baseline, Welch over
  the (seed × template) observations with its infinite t and df, the pooled two-proportion z with
  ``k = int(round(sum(obs)·N))`` and its n per benchmark (XNLI 2,505), its ``*``/``**`` and Bonferroni
  ``***`` markers over the whole family.
- The default is the calibrated set: n is the rows each cell scored; the seed t (:func:`prediction_t`)
  and the z are NaN with a note where undefined; no Welch (its observations are seed × template copies
  of one test set against a baseline of two templates: it rejects a true null 8% of the time at α = 5%); the markers come from a paired sign-flip test
  of per-item differences (:func:`sign_flip_test`), whose unit is the item, not the seed × template copy of
  it; intervals resample items (:func:`bootstrap_paired_mean`) or seeds and items
  (:func:`bootstrap_seed_item`). ``benchmarks/stats_calibration.py`` measures both sets' type-I error,
  coverage and power.

Also: the exact McNemar test per run, Holm and Benjamini–Hochberg adjustment, the t interval of a seed mean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from stages.lib.errors import StageError
from stages.lib.tasks import paper_n_examples

# The true rows per cell of each benchmark: the definitions' n_examples (stages/lib/tasks/*.yaml).
N_EXAMPLES: Mapping[str, int] = paper_n_examples()
# build_significance.N_EXAMPLES as published: XNLI halved by mistake.
N_EXAMPLES_ORIGINAL: Mapping[str, int] = {**N_EXAMPLES, "xnli": 2505}

CELL_COLUMNS = ("benchmark", "data_lang", "instr_lang")
RUN_COLUMNS = ("condition", "seed", "template", *CELL_COLUMNS)
ALPHA = 0.05
BASELINE = "baseline"


class StatsError(StageError, ValueError):
    """Input that cannot be aggregated honestly; the message names the condition, seed and cell."""


@dataclass(frozen=True)
class TestResult:
    statistic: float
    df: float
    p: float
    note: str = ""  # why the test could not be computed (statistic, df and p are then NaN)


def not_computed(note: str) -> TestResult:
    """A test that has no answer: NaN everywhere and the reason, never p = 0 or an infinite t."""
    return TestResult(math.nan, math.nan, math.nan, note)


@dataclass(frozen=True)
class PropZ:
    z: float
    p: float
    n_cond: int
    n_base: int


@dataclass(frozen=True)
class McNemar:
    n: int
    cond_only: int  # cond correct, baseline wrong (discordant b)
    base_only: int  # baseline correct, cond wrong (discordant c)
    p: float


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int


def n_examples(benchmark: str, *, xnli_n_original: bool = False) -> int:
    """Rows per cell of ``benchmark``: the true n by default, the published script's n on request.

    The z test's power depends on n, so the choice is explicit: ``xnli_n_original=True`` gives the
    original's 2,505 for XNLI (reproduces ``significance.tsv``), the default the true 5,010.
    """
    table = N_EXAMPLES_ORIGINAL if xnli_n_original else N_EXAMPLES
    try:
        return table[benchmark]
    except KeyError:
        raise StatsError(f"unknown benchmark {benchmark!r} (expected one of {sorted(table)})") from None


# --- seed aggregation -------------------------------------------------------------------------------


def _keys(columns: Sequence[str], row: tuple) -> str:
    return ", ".join(f"{c}={v}" for c, v in zip(columns, row if isinstance(row, tuple) else (row,)))


def _check_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StatsError(f"table lacks column(s) {missing}; it has {list(frame.columns)}")


def collapse_templates(runs: pd.DataFrame, value: str = "acc", cell: Sequence[str] = CELL_COLUMNS) -> pd.DataFrame:
    """Mean of ``value`` within each (condition, seed, *cell*), over templates and any finer rows.

    Templates are two wordings of one prompt, not replicates: averaging them first keeps a 3-seed
    condition at 3 observations, so its sd measures seed variance only. ``cell`` may be coarser
    than a cell (e.g. ``("benchmark", "instr_lang")`` for the "ALL" rows of cross-seed-variance: the
    unweighted mean over 4 data languages × 2 templates). A duplicated row, or a seed that lacks a
    template another seed of the same condition has, is an error rather than a silently uneven mean.
    Seeds may be missing values (the baseline's ``seed=none``): they form a group of their own.
    """
    cell = list(cell)
    _check_columns(runs, ["condition", "seed", "template", *cell, value])
    finest = [c for c in RUN_COLUMNS if c in runs.columns]
    dup = runs.duplicated(subset=finest, keep=False)
    if dup.any():
        first = runs.loc[dup, finest].iloc[0]
        raise StatsError(f"duplicated row: {_keys(finest, tuple(first))}")
    have = runs.groupby(["condition", "seed", *cell], dropna=False)["template"].transform("nunique")
    want = runs.groupby(["condition", *cell], dropna=False)["template"].transform("nunique")
    uneven = have != want
    if uneven.any():
        first = runs.loc[uneven, ["condition", "seed", *cell]].iloc[0]
        raise StatsError(
            f"templates differ between seeds: {_keys(['condition', 'seed', *cell], tuple(first))} has "
            f"{int(have[uneven].iloc[0])} of the condition's {int(want[uneven].iloc[0])} templates"
        )
    out = (
        runs.groupby(["condition", "seed", *cell], dropna=False, sort=True)
        .agg(**{value: (value, "mean"), "n_templates": ("template", "nunique")})
        .reset_index()
    )
    return out


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t CI of the mean of ``values`` (sample sd, df = n − 1); None below two values.

    With 3 seeds the t quantile (4.30) is far wider than the normal 1.96: the honest width.
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    half = sps.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def seed_stats(
    runs: pd.DataFrame, value: str = "acc", cell: Sequence[str] = CELL_COLUMNS, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (condition, *cell*): mean over seeds of the template-collapsed value, sd (ddof=1), t CI.

    Columns: condition, *cell*, n_seeds, mean, sd, ci_low, ci_high, point_estimate. A condition with a
    single seed is a point estimate: sd and CI are missing (NaN in the frame; never 0, which would read
    as "no variance"),
    and ``point_estimate`` is True so no table or test treats it as seeded.
    """
    cell = list(cell)
    per_seed = collapse_templates(runs, value, cell)
    rows = []
    for key, group in per_seed.groupby(["condition", *cell], dropna=False, sort=True):
        x = group[value].to_numpy(dtype=float)
        ci = t_interval(x, confidence)
        rows.append(
            {
                **dict(zip(["condition", *cell], key)),
                "n_seeds": int(x.size),
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)) if x.size > 1 else None,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "point_estimate": bool(x.size < 2),
            }
        )
    return pd.DataFrame(rows, columns=["condition", *cell, "n_seeds", "mean", "sd", "ci_low", "ci_high", "point_estimate"])


def robustness(per_seed_values: Sequence[float]) -> str:
    """The cross-seed-variance verdict on a per-seed Δ.

    "robust" when |mean|/sd ≥ 2 and every seed has the sign of the mean; "within noise" when
    |mean| < 2 sd; "mixed" otherwise (large but some seed disagrees in sign); one seed: "cannot be
    assessed".
    """
    x = np.asarray(per_seed_values, dtype=float)
    if x.size < 2:
        return "cannot be assessed"
    mean, sd = x.mean(), x.std(ddof=1)
    big = abs(mean) >= 2 * sd
    if big and (np.all(x > 0) or np.all(x < 0)):
        return "robust"
    return "mixed" if big else "within noise"


# --- the original's tests (build_significance.py) ------------------------------------------------


def one_sample_t(per_seed: Sequence[float], popmean: float) -> TestResult:
    """``ttest_1samp`` of the per-seed means against the baseline mean, two-sided, df = n_seeds − 1.

    NaN (all three fields) with fewer than two seeds: one seed has no sampling variance to test.
    """
    x = np.asarray(per_seed, dtype=float)
    if x.size < 2:
        return TestResult(math.nan, math.nan, math.nan)
    with warnings.catch_warnings():  # degenerate (zero-variance) inputs give inf/NaN, which is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_1samp(x, popmean=popmean)
    return TestResult(float(res.statistic), float(x.size - 1), float(res.pvalue))


def welch_df(a: Sequence[float], b: Sequence[float]) -> float:
    """Welch–Satterthwaite df by hand with ddof=1 variances, ``inf`` when both are 0 (as published)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va == 0 and vb == 0:
        return math.inf
    return float((va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)))


def welch_t(cond_obs: Sequence[float], base_obs: Sequence[float]) -> TestResult:
    """``ttest_ind(cond_obs, base_obs, equal_var=False)`` over (seed × template) observations.

    As in the original the observations mix seeds and templates, and a single-seed condition is
    tested on its two templates; callers flag such rows (see :func:`significance_table`).
    """
    with warnings.catch_warnings():  # as in one_sample_t
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.ttest_ind(np.asarray(cond_obs, float), np.asarray(base_obs, float), equal_var=False)
    return TestResult(float(res.statistic), welch_df(cond_obs, base_obs), float(res.pvalue))


def prediction_t(per_seed: Sequence[float], baseline: float) -> TestResult:
    """Seed mean against a baseline run as noisy as a seed: ``t = (x̄ − b) / (s·√(1 + 1/k))``, df = k − 1.

    The original's one-sample t takes the baseline's single run as exact, and so rejects a true null
    about three times too often (17% at α = 0.05 when every run draws from the same per-item ability).
    A baseline run has its own sampling noise (rows answered right by chance); under the null it is one
    more draw of what a seed draws, so the difference has variance σ²/k + σ², with σ estimated from the
    k seeds. Where training adds seed noise the baseline lacks, the test is conservative. NaN with a
    note for one seed, or seeds that agree to the last digit (checked by value).
    """
    x = np.asarray(per_seed, dtype=float)
    if x.size < 2:
        return not_computed("one seed: no seed variance to test against")
    if np.all(x == x[0]):
        return not_computed("seeds identical: no seed variance to test against")
    t = (float(x.mean()) - baseline) / (float(x.std(ddof=1)) * math.sqrt(1 + 1 / x.size))
    return TestResult(t, float(x.size - 1), float(2 * sps.t.sf(abs(t), x.size - 1)))


def prop_z(cond_obs: Sequence[float], base_obs: Sequence[float], n: int) -> PropZ:
    """Pooled two-proportion z of the original, with ``n`` rows per observed accuracy.

    ``k = int(round(sum(obs)·n))`` correct answers out of ``n·len(obs)``; ``Δ = mean(cond) −
    mean(base)``; ``se`` pooled; ``p = 2(1 − Φ(|z|))``; NaN when se = 0. It treats the paired rows of
    one test set as independent samples (the original says so itself); see :func:`mcnemar_exact`.
    """
    c, b = np.asarray(cond_obs, dtype=float), np.asarray(base_obs, dtype=float)
    n_c, n_b = n * c.size, n * b.size
    k_c, k_b = int(round(float(c.sum()) * n)), int(round(float(b.sum()) * n))
    pooled = (k_c + k_b) / (n_c + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_b))
    if se == 0:
        return PropZ(math.nan, math.nan, n_c, n_b)
    z = (float(c.mean()) - float(b.mean())) / se
    return PropZ(z, 2 * (1 - float(sps.norm.cdf(abs(z)))), n_c, n_b)


def significance_marker(p: float) -> str:
    """``**`` below 0.01, ``*`` below 0.05, else empty (the original's uncorrected marker)."""
    if not p < 0.05:  # NaN included
        return ""
    return "**" if p < 0.01 else "*"


# --- multiplicity -----------------------------------------------------------------------------------


def _adjust(pvalues: Sequence[float], fn) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = fn(p[ok])
    return out


def bonferroni(pvalues: Sequence[float]) -> np.ndarray:
    """``min(1, p·m)`` with m the family size (NaNs kept, and excluded from m)."""
    return _adjust(pvalues, lambda p: np.minimum(1.0, p * p.size))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p values: controls the FWER like Bonferroni, never less powerful.

    NaNs stay NaN and do not count towards the family.
    """

    def step_down(p: np.ndarray) -> np.ndarray:
        order = np.argsort(p, kind="stable")
        m = p.size
        adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
        out = np.empty(m)
        out[order] = adjusted
        return out

    return _adjust(pvalues, step_down)


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """BH adjusted p values (``scipy.stats.false_discovery_control``, method "bh"): controls the FDR.

    With hundreds of cells the family-wise control of Bonferroni is very strict; the FDR is the rate
    a reader of a table of many comparisons actually cares about. NaNs stay NaN, outside the family.
    """
    return _adjust(pvalues, lambda p: sps.false_discovery_control(p, method="bh"))


# --- significance.tsv -------------------------------------------------------------------------------

# The original's columns in its order (build_significance.py), then what this module adds.
ORIGINAL_SIGNIFICANCE_COLUMNS = (
    "condition", *CELL_COLUMNS, "n_seeds", "n_examples_cond", "n_examples_base", "baseline_acc", "cond_acc", "delta_pp",
    "seed_sigma_pp", "one_sample_t", "one_sample_df", "one_sample_p", "welch_t", "welch_df", "welch_p", "z_prop",
    "prop_z_p", "sig_uncorrected_prop_z", "sig_bonferroni_prop_z", "point_estimate", "n_per_cell", "prop_z_p_holm",
    "prop_z_p_bh",
)  # fmt: skip
# The calibrated set (the default): no marker here; the paired per-item test that gives them needs the rows.
SIGNIFICANCE_COLUMNS = (
    "condition", *CELL_COLUMNS, "n_seeds", "point_estimate", "n_per_cell", "n_known", "n_examples_cond", "n_examples_base",
    "baseline_acc", "cond_acc", "delta_pp", "seed_sigma_pp", "seed_t",
    "seed_t_df", "seed_t_p", "seed_t_note", "z_prop", "prop_z_p", "prop_z_note",
)  # fmt: skip


def observed_n(runs: pd.DataFrame, columns: Sequence[str] = RUN_COLUMNS) -> pd.Series:
    """The rows each cell actually scored (column ``n``), checked equal within a cell.

    A paired comparison needs the condition and the baseline to answer the same rows, so an ``n`` that
    is missing, or that differs between two runs of one (benchmark, data_lang, instr_lang), is an error
    naming the run. Returns n per cell.
    """
    _check_columns(runs, [*columns, "n"])
    absent = runs["n"].isna()
    if absent.any():
        raise StatsError(f"no row count n for {_keys(columns, tuple(runs.loc[absent, list(columns)].iloc[0]))}")
    per_cell = runs.groupby(list(CELL_COLUMNS), sort=True)["n"]
    for key, ns in per_cell.unique().items():
        if len(ns) > 1:
            raise StatsError(f"runs of one cell scored different rows ({sorted(int(v) for v in ns)}): {_keys(CELL_COLUMNS, key)}")
    return per_cell.first().astype(int)


def n_mismatches(runs: pd.DataFrame) -> dict[str, list[int]]:
    """Benchmark -> the observed row counts that differ from its known size (smoke runs, ``n_samples``)."""
    out: dict[str, set[int]] = {}
    for (benchmark, *_), value in observed_n(runs).items():
        known = N_EXAMPLES.get(benchmark)
        if known is not None and value != known:  # a benchmark without a published n has nothing to differ from
            out.setdefault(benchmark, set()).add(int(value))
    return {benchmark: sorted(values) for benchmark, values in out.items()}


def _original_row(cond_obs: np.ndarray, base_obs: np.ndarray, per_seed: np.ndarray, n: int) -> dict:
    """The three tests exactly as ``build_significance.compute_row`` computed them (its inf, its df 0)."""
    one = one_sample_t(per_seed, float(base_obs.mean()))
    welch, z = welch_t(cond_obs, base_obs), prop_z(cond_obs, base_obs, n)
    return {"one_sample_t": one.statistic, "one_sample_df": one.df if per_seed.size > 1 else 0, "one_sample_p": one.p,
            "welch_t": welch.statistic, "welch_df": welch.df, "welch_p": welch.p, "z_prop": z.z, "prop_z_p": z.p}


def _calibrated_row(cond_obs: np.ndarray, base_obs: np.ndarray, per_seed: np.ndarray, n: int) -> dict:
    seed_t, z = prediction_t(per_seed, float(base_obs.mean())), prop_z(cond_obs, base_obs, n)
    return {"seed_t": seed_t.statistic, "seed_t_df": seed_t.df, "seed_t_p": seed_t.p, "seed_t_note": seed_t.note,
            "z_prop": z.z, "prop_z_p": z.p,
            "prop_z_note": "" if not math.isnan(z.p) else "no variance: every answer of both sides right, or every one wrong"}


def significance_table(
    runs: pd.DataFrame, *, value: str = "acc", baseline: str = BASELINE, original: bool = False, alpha: float = ALPHA
) -> pd.DataFrame:
    """``significance.tsv`` without its per-item columns: one row per fine-tuned (condition, *cell*).

    ``runs`` holds the baseline's rows (condition ``baseline``, its templates) and every fine-tuned
    (condition, seed, template, cell) value. Per row, as in the original: ``cond_obs`` all of the
    condition's (seed × template) values, ``base_obs`` the baseline's template values, ``per_seed`` the
    template means.

    ``original=True`` is ``build_significance.py`` as published: its n per benchmark (XNLI 2,505), the
    one-sample t, Welch with its infinite t and df, the pooled z, the ``*``/``**`` and Bonferroni ``***``
    markers of the z over the whole family, judged on p rounded to 5 dp as the original did; pass 4-dp
    rounded accuracies to get its file back. Added: ``point_estimate``, ``n_per_cell``, Holm and BH of z.

    The default is the calibrated set: n is the rows each cell scored (column ``n``, see
    :func:`observed_n`); the seed t (:func:`prediction_t`, which replaces the one-sample t and
    Welch) is NaN with a note where it cannot be computed; the z carries no marker (it ignores pairing: the
    markers come from the paired per-item test the caller adds, see :func:`sign_flip_test`).
    Values are unrounded.
    """
    cell = list(CELL_COLUMNS)
    _check_columns(runs, [*RUN_COLUMNS, value])
    collapse_templates(runs, value, cell)  # validates duplicates and uneven templates
    n_by_cell = None if original else observed_n(runs)
    base = runs[runs["condition"] == baseline]
    if base.empty:
        raise StatsError(f"no rows of the baseline condition {baseline!r}")
    base_by_cell = {key: g[value].to_numpy(float) for key, g in base.groupby(cell, sort=True)}
    rows = []
    for key, group in runs[runs["condition"] != baseline].groupby(["condition", *cell], sort=True, dropna=False):
        cell_key = tuple(key[1:])
        if cell_key not in base_by_cell:
            raise StatsError(f"no baseline for {_keys(['condition', *cell], key)}")
        base_obs = base_by_cell[cell_key]
        cond_obs = group[value].to_numpy(float)
        per_seed = group.groupby("seed", dropna=False, sort=True)[value].mean().to_numpy(float)
        n = n_examples(key[1], xnli_n_original=True) if original else int(n_by_cell[cell_key])
        tests = (_original_row if original else _calibrated_row)(cond_obs, base_obs, per_seed, n)
        rows.append({
            **dict(zip(["condition", *cell], key)),
            "n_seeds": int(per_seed.size),
            "point_estimate": bool(per_seed.size < 2),
            "n_per_cell": n,
            "n_known": N_EXAMPLES.get(key[1]),
            "n_examples_cond": n * cond_obs.size,
            "n_examples_base": n * base_obs.size,
            "baseline_acc": float(base_obs.mean()),
            "cond_acc": float(cond_obs.mean()),
            "delta_pp": (float(cond_obs.mean()) - float(base_obs.mean())) * 100,
            "seed_sigma_pp": float(per_seed.std(ddof=1)) * 100 if per_seed.size > 1 else math.nan,
            **tests,
        })  # fmt: skip
    columns = ORIGINAL_SIGNIFICANCE_COLUMNS if original else SIGNIFICANCE_COLUMNS
    out = pd.DataFrame(rows, columns=[c for c in columns if not c.startswith(("sig_", "prop_z_p_"))])
    if original:
        # the original marks the p it has already rounded to 5 dp, over every row of the family
        published = out["prop_z_p"].map(lambda p: round(p, 5) if not math.isnan(p) else p)
        threshold = alpha / max(len(out), 1)
        out["sig_uncorrected_prop_z"] = [significance_marker(p) for p in published]
        out["sig_bonferroni_prop_z"] = ["***" if p < threshold else "" for p in published]
        out["prop_z_p_holm"] = holm(out["prop_z_p"].to_numpy(float))
        out["prop_z_p_bh"] = benjamini_hochberg(out["prop_z_p"].to_numpy(float))
    return out[list(columns)]


def add_markers(table: pd.DataFrame, p_column: str, test: str, alpha: float = ALPHA) -> pd.DataFrame:
    """Markers of ``p_column`` over the whole family of non-NaN rows: uncorrected ``*``/``**``, Holm
    ``***`` (family-wise error ``alpha``; never less powerful than Bonferroni), BH ``fdr`` (false
    discovery rate ``alpha``), with the adjusted p values beside them. NaN p: no marker, outside the family.
    """
    p = table[p_column].to_numpy(float)
    out = table.copy()
    out[f"{p_column}_holm"] = holm(p)
    out[f"{p_column}_bh"] = benjamini_hochberg(p)
    out[f"sig_uncorrected_{test}"] = [significance_marker(v) for v in p]
    out[f"sig_holm_{test}"] = ["***" if v < alpha else "" for v in out[f"{p_column}_holm"]]
    out[f"sig_bh_{test}"] = ["fdr" if v < alpha else "" for v in out[f"{p_column}_bh"]]
    return out


# --- beyond the original: paired tests and bootstrap ------------------------------------------------


def mcnemar_exact(cond_correct: Sequence[bool], base_correct: Sequence[bool]) -> McNemar:
    """Exact McNemar test of two scorings of the same rows (paired by position).

    Both runs answer the same test set, so only rows where exactly one is right carry information:
    under H0 the cond-only count is Binomial(b + c, ½) (the p of ``scipy.stats.binomtest``, two-sided).
    With no discordant row p = 1.
    """
    a, b = np.asarray(cond_correct, dtype=bool), np.asarray(base_correct, dtype=bool)
    if a.shape != b.shape:
        raise StatsError(f"paired vectors differ in length: {a.size} vs {b.size}")
    cond_only, base_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    # binomtest's two-sided p at ½ is twice the smaller tail (the law is symmetric), 50× faster written so
    p = min(1.0, 2 * float(sps.binom.cdf(min(cond_only, base_only), cond_only + base_only, 0.5)))
    return McNemar(int(a.size), cond_only, base_only, p)


def mcnemar_table(examples: pd.DataFrame, *, baseline: str = BASELINE) -> pd.DataFrame:
    """Exact McNemar per fine-tuned (condition, seed, template, cell) against the baseline's same cell.

    ``examples`` has one row per answered example: the run columns, ``row`` (position in the
    dataset, the only alignment the results files allow) and ``correct`` (bool). Rows are paired on
    (template, cell, row); a cell whose row set differs from the baseline's is an error. Columns: the
    run columns, n, cond_only, base_only, mcnemar_p, and Holm and BH adjusted p over all rows.
    """
    _check_columns(examples, [*RUN_COLUMNS, "row", "correct"])
    pair_on = ["template", *CELL_COLUMNS]
    base = examples[examples["condition"] == baseline]
    base_rows = {key: g.set_index("row")["correct"].sort_index() for key, g in base.groupby(pair_on, sort=True)}
    out = []
    runs_cols = list(RUN_COLUMNS)
    for key, group in examples[examples["condition"] != baseline].groupby(runs_cols, sort=True, dropna=False):
        named = dict(zip(runs_cols, key))
        ref = base_rows.get(tuple(named[c] for c in pair_on))
        cond = group.set_index("row")["correct"].sort_index()
        if ref is None or not cond.index.equals(ref.index):
            raise StatsError(f"rows of {_keys(runs_cols, key)} do not match the baseline's cell")
        res = mcnemar_exact(cond.to_numpy(bool), ref.to_numpy(bool))
        out.append({**named, "n": res.n, "cond_only": res.cond_only, "base_only": res.base_only, "mcnemar_p": res.p})
    table = pd.DataFrame(out, columns=[*runs_cols, "n", "cond_only", "base_only", "mcnemar_p"])
    table["mcnemar_p_holm"] = holm(table["mcnemar_p"].to_numpy(float))
    table["mcnemar_p_bh"] = benjamini_hochberg(table["mcnemar_p"].to_numpy(float))
    return table


def bootstrap_mean_diff(
    x: Sequence[float],
    y: Sequence[float],
    *,
    seed: int,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    paired: bool = False,
) -> BootstrapCI:
    """Percentile bootstrap CI of ``mean(x) − mean(y)``, reproducible from ``seed``.

    Resamples x and y independently, or (``paired=True``, equal lengths) the same indices for both,
    which keeps the pairing of per-example or per-cell matched values. The seed is a required argument,
    never a constant here: the same seed gives the same interval.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size == 0 or b.size == 0:
        raise StatsError("bootstrap needs at least one value on each side")
    if paired and a.size != b.size:
        raise StatsError(f"paired bootstrap needs equal lengths, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(n_resamples, a.size))
    ib = ia if paired else rng.integers(0, b.size, size=(n_resamples, b.size))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return BootstrapCI(float(a.mean() - b.mean()), float(low), float(high), confidence, n_resamples, seed)


def bootstrap_paired_mean(
    diffs: Sequence[float], *, seed: int, n_resamples: int = 10_000, confidence: float = 0.95
) -> BootstrapCI:
    """Percentile bootstrap CI of ``mean(diffs)`` over paired examples, drawn as multinomial counts.

    Resampling n examples with replacement only matters through how often each distinct value is
    drawn, so drawing those counts (Multinomial(n, observed shares)) gives the same distribution as
    :func:`bootstrap_mean_diff` with ``paired=True`` on ``diffs`` and zeros, at a cost of resamples ×
    distinct values instead of resamples × n: per-example correctness differences take a handful of
    values, so 10,000 resamples of a 5,010-row XNLI cell cost microseconds. Reproducible from ``seed``.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise StatsError("bootstrap needs at least one value")
    values, counts = np.unique(d, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(d.size, counts / d.size, size=n_resamples)
    means = draws @ values / d.size
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapCI(float(d.mean()), float(low), float(high), confidence, n_resamples, seed)


# --- the calibrated paired tests: per item, seeds and templates averaged --------------------------------


@dataclass(frozen=True)
class SignFlip:
    n: int  # items
    nonzero: int  # items whose difference is not 0: the only ones a sign flip moves
    mean_diff: float
    p: float
    method: str  # "exact" (the whole sign-flip distribution) or "monte carlo"
    n_resamples: int  # 0 when exact
    seed: int


EXACT_LATTICE = 2_000  # above this many lattice steps the exact convolution costs more than resampling


def _runs_by_items(correct, name: str) -> np.ndarray:
    x = np.asarray(correct, dtype=bool)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0:
        raise StatsError(f"{name}: expected runs × items correctness, got shape {x.shape}")
    return x


def sign_flip_test(cond_correct, base_correct, *, seed: int, n_resamples: int = 10_000) -> SignFlip:
    """Paired sign-flip test of the per-item difference, the condition's runs averaged against the baseline's.

    ``cond_correct`` is runs × items (every seed × template of the condition), ``base_correct`` runs ×
    items (the baseline's templates); item i's difference is its share of right answers over the
    condition's runs minus its share over the baseline's. Under H0 (no effect: each item's difference is
    symmetric about 0) every sign pattern of the differences is equally likely; the statistic is their
    sum, two-sided. Only the N items count as independent, not the 6·N (seed × template) answers that the
    pooled McNemar counted. Each difference is an integer over ``runs_c · runs_b``, so the sign-flip
    distribution is that of Σ v·(2·Binomial(m_v, ½) − m_v) over the distinct magnitudes v (m_v items
    each): computed exactly by convolution while small, else drawn as binomials (the same distribution
    as flipping every item, at the cost of a few draws per resample) with the p value
    ``(1 + #{|S*| ≥ |S|}) / (1 + n_resamples)``, which is never 0 and exact in level.
    """
    c, b = _runs_by_items(cond_correct, "condition"), _runs_by_items(base_correct, "baseline")
    if c.shape[1] != b.shape[1]:
        raise StatsError(f"paired rows differ: the condition has {c.shape[1]} items, the baseline {b.shape[1]}")
    scaled = b.shape[0] * c.sum(axis=0, dtype=np.int64) - c.shape[0] * b.sum(axis=0, dtype=np.int64)
    mean_diff = float(scaled.mean()) / (c.shape[0] * b.shape[0])
    magnitudes, counts = np.unique(np.abs(scaled[scaled != 0]), return_counts=True)
    if magnitudes.size == 0:
        return SignFlip(int(c.shape[1]), 0, mean_diff, 1.0, "exact", 0, seed)
    step = int(np.gcd.reduce(magnitudes))
    magnitudes, observed = magnitudes // step, abs(int(scaled.sum())) // step
    total = int(magnitudes @ counts)
    if total <= EXACT_LATTICE:
        pmf = np.ones(1)
        for v, m in zip(magnitudes.tolist(), counts.tolist()):
            part = np.zeros(2 * v * m + 1)
            part[:: 2 * v] = sps.binom.pmf(np.arange(m + 1), m, 0.5)
            pmf = np.convolve(pmf, part)
        p = min(1.0, float(pmf[np.abs(np.arange(-total, total + 1)) >= observed].sum()))
        return SignFlip(int(c.shape[1]), int(counts.sum()), mean_diff, p, "exact", 0, seed)
    rng = np.random.default_rng(seed)
    sums = (2 * rng.binomial(counts, 0.5, size=(n_resamples, counts.size)) - counts) @ magnitudes
    p = (1 + int(np.sum(np.abs(sums) >= observed))) / (1 + n_resamples)
    return SignFlip(int(c.shape[1]), int(counts.sum()), mean_diff, p, "monte carlo", n_resamples, seed)


def bootstrap_seed_item(
    per_seed_diffs, *, seed: int, n_resamples: int = 10_000, confidence: float = 0.95
) -> BootstrapCI:
    """Two-level percentile bootstrap of the mean of a seeds × items table of per-item differences.

    Each resample draws k seeds with replacement and, independently, n items with replacement (the
    same items for every seed: seeds answer one test set, so the design is crossed, not nested), so the
    interval counts training-seed variance as well as item sampling, where :func:`bootstrap_paired_mean`
    of the seed-averaged differences counts items only. Items enter only through their column of k
    values, so identical columns are drawn as multinomial counts (as in :func:`bootstrap_paired_mean`).
    Needs two seeds or more. Reproducible from ``seed``.
    """
    d = np.asarray(per_seed_diffs, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] == 0:
        raise StatsError(f"the seed × item bootstrap needs two seeds or more and one item, got shape {d.shape}")
    k, n = d.shape
    columns, counts = np.unique(d.T, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    per_seed = rng.multinomial(n, counts / n, size=n_resamples) @ columns / n  # resamples × seeds
    seeds = rng.multinomial(k, np.full(k, 1 / k), size=n_resamples)
    means = np.sum(per_seed * seeds, axis=1) / k
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapCI(float(d.mean()), float(low), float(high), confidence, n_resamples, seed)
