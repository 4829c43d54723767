"""significance.tsv and mcnemar.tsv: the report's tests of each condition against the baseline.

By default the calibrated set (:func:`stages.lib.stats.significance_table` on unrounded accuracies with
the rows each cell scored, plus the paired tests of the per-example rows: a sign-flip test whose p values
give the markers, an item-only and a seed × item bootstrap CI); ``original=True`` the original's
``build_significance.py`` columns as it computed them. :func:`mcnemar_runs` is the exact McNemar test per run.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np
import pandas as pd

from stages.lib import stats
from stages.lib.paper_order import sort_rows
from stages.lib.report_frames import CELL, RENAME_OUT
from stages.lib.results_index import BASELINE, RUN_COLUMNS, TEMPLATES, ReportError, seed_sort_key

SIGNIFICANCE_DIGITS = {
    "baseline_acc": 4, "cond_acc": 4, "delta_pp": 2, "seed_sigma_pp": 2, "one_sample_t": 3, "one_sample_df": 0,
    "one_sample_p": 5, "welch_t": 3, "welch_df": 2, "welch_p": 5, "seed_t": 3, "seed_t_df": 0, "seed_t_p": 5, "z_prop": 3,
    "prop_z_p": 5, "prop_z_p_holm": 5, "prop_z_p_bh": 5, "signflip_diff_pp": 2, "signflip_p": 5, "signflip_p_holm": 5,
    "signflip_p_bh": 5, "item_boot_ci_low_pp": 2, "item_boot_ci_high_pp": 2, "seed_item_boot_ci_low_pp": 2,
    "seed_item_boot_ci_high_pp": 2,
}  # fmt: skip
PAIRED_SIGNIFICANCE = ["mcnemar_runs", "mcnemar_runs_p05", "signflip_items", "signflip_nonzero", "signflip_diff_pp",
                       "signflip_p", "signflip_method", "signflip_note", "item_boot_ci_low_pp", "item_boot_ci_high_pp",
                       "seed_item_boot_ci_low_pp", "seed_item_boot_ci_high_pp", "ci_note"]
MARKERS = ["signflip_p_holm", "signflip_p_bh", "sig_uncorrected_signflip", "sig_holm_signflip", "sig_bh_signflip"]


def significance_columns(original: bool) -> list[str]:
    """significance.tsv's header: the original's columns, or the calibrated set and its paired tests."""
    if original:
        return [RENAME_OUT.get(c, c) for c in stats.ORIGINAL_SIGNIFICANCE_COLUMNS]
    return [RENAME_OUT.get(c, c) for c in stats.SIGNIFICANCE_COLUMNS] + PAIRED_SIGNIFICANCE + MARKERS


def significance(complete: pd.DataFrame, correct: dict, *, original: bool, boot_seed: int, boot_resamples: int,
                 err=None, templates: Sequence[int] = TEMPLATES) -> pd.DataFrame:
    """Significance per (condition, cell) from the refined accuracies: the calibrated set, or the original's.

    ``original=True`` (``--original-statistics``): ``build_significance.py`` on 4-dp accuracies with its
    n (XNLI 2,505) and markers, so the published p values come back. Default: the tests of
    :func:`stats.significance_table` on unrounded accuracies with the rows each cell scored (a line on
    ``err`` per benchmark whose cells differ from its known size), and from the per-example rows the
    paired sign-flip test of the seed- and template-averaged per-item differences, whose p values give
    the markers (uncorrected, Holm, BH), an item-only bootstrap CI and, with two seeds or more, a seed ×
    item bootstrap CI (:func:`_paired`).
    """
    runs = complete[RUN_COLUMNS + ["n", "acc_refined"]].dropna(subset=["acc_refined"]).rename(columns={"acc_refined": "acc"})
    if original:
        runs["acc"] = runs["acc"].round(4)
    if (runs["condition"] == BASELINE).sum() == 0 or (runs["condition"] != BASELINE).sum() == 0:
        return pd.DataFrame(columns=significance_columns(original))
    cells_with_base = runs[runs["condition"] == BASELINE][CELL].drop_duplicates()
    runs = runs.merge(cells_with_base, on=CELL)
    try:
        table = stats.significance_table(runs, original=original)
        mismatched = {} if original else stats.n_mismatches(runs)
    except stats.StatsError as error:
        raise ReportError(f"significance: {error}") from None
    for benchmark, ns in mismatched.items():
        print(f"report: significance: {benchmark} cells scored {', '.join(map(str, ns))} rows, not the benchmark's "
              f"{stats.N_EXAMPLES[benchmark]}: the tests use the rows scored", file=err or sys.stderr)
    if not original:
        seeds = runs.groupby("condition")["seed"].unique()
        paired = [_paired(row, sorted(seeds[row.condition], key=seed_sort_key), correct, boot_seed, boot_resamples,
                          templates)
                  for row in table.itertuples()]
        paired = pd.DataFrame(paired, columns=PAIRED_SIGNIFICANCE)
        counts = ["mcnemar_runs", "mcnemar_runs_p05", "signflip_items", "signflip_nonzero"]
        paired[counts] = paired[counts].astype("Int64")
        table = pd.concat([table.reset_index(drop=True), paired], axis=1)
        table = stats.add_markers(table, "signflip_p", "signflip")
    out = table.rename(columns=RENAME_OUT)
    return sort_rows(out, ["condition", "benchmark", "instr", "data"])[significance_columns(original)]


def _paired(row, seeds: list[str], correct: dict, boot_seed: int, boot_resamples: int,
            templates: Sequence[int] = TEMPLATES) -> dict:
    """The per-item columns of one row: per-run McNemar count, sign-flip test, item and seed × item CIs.

    Item i's difference is the condition's share of right answers over its seed × template runs minus
    the baseline's over its templates; the seed × item CI uses the per-seed differences (templates
    averaged within a seed). Without per-example rows (``--no-rows``) these are NaN with a note.
    """
    cell = (row.benchmark, row.data_lang, row.instr_lang)
    base = [correct.get((BASELINE, "none", t, *cell)) for t in templates]
    cond = [[correct.get((row.condition, seed, t, *cell)) for t in templates] for seed in seeds]
    vectors = [v for v in base + sum(cond, []) if v is not None]
    if len(vectors) < len(templates) * (len(seeds) + 1):
        note = "no per-example rows" if not vectors else "per-example rows of some run missing"
        return {"signflip_note": note, "ci_note": note, "signflip_p": math.nan}
    if len({v.size for v in vectors}) > 1:
        raise ReportError(f"{row.condition} {cell}: its runs and the baseline's have {sorted({v.size for v in vectors})} rows")
    base, cond = np.array(base, dtype=bool), np.array(cond, dtype=bool)  # templates × items; seeds × templates × items
    mcnemar = [stats.mcnemar_exact(c, b).p for runs in cond for c, b in zip(runs, base)]
    test = stats.sign_flip_test(cond.reshape(-1, base.shape[1]), base, seed=boot_seed, n_resamples=boot_resamples)
    per_seed = cond.mean(axis=1) - base.mean(axis=0)  # seeds × items
    items = stats.bootstrap_paired_mean(per_seed.mean(axis=0), seed=boot_seed, n_resamples=boot_resamples)
    out = {"mcnemar_runs": len(mcnemar), "mcnemar_runs_p05": sum(p < stats.ALPHA for p in mcnemar),
           "signflip_items": test.n, "signflip_nonzero": test.nonzero, "signflip_diff_pp": test.mean_diff * 100,
           "signflip_p": test.p, "signflip_method": test.method,
           "signflip_note": "" if test.nonzero else "no item differs: p = 1",
           "item_boot_ci_low_pp": items.low * 100, "item_boot_ci_high_pp": items.high * 100, "ci_note": ""}
    if len(seeds) < 2:
        return {**out, "ci_note": "one seed: no seed × item interval"}
    both = stats.bootstrap_seed_item(per_seed, seed=boot_seed, n_resamples=boot_resamples)
    return {**out, "seed_item_boot_ci_low_pp": both.low * 100, "seed_item_boot_ci_high_pp": both.high * 100}


def mcnemar_runs(vs: pd.DataFrame, correct: dict) -> pd.DataFrame:
    """Exact McNemar per fine-tuned (condition, seed, template, cell) against the baseline's same cell."""
    rows = []
    for r in vs.itertuples():
        c = correct.get((r.condition, r.seed, r.template, r.benchmark, r.data_lang, r.instr_lang))
        b = correct.get((BASELINE, "none", r.template, r.benchmark, r.data_lang, r.instr_lang))
        if c is None or b is None:
            continue
        if c.size != b.size:
            raise ReportError(f"{r.condition} seed{r.seed} template{r.template} {r.benchmark} data={r.data_lang} "
                              f"instr={r.instr_lang}: {c.size} rows, the baseline {b.size}")
        res = stats.mcnemar_exact(c, b)
        rows.append({"condition": r.condition, "seed": r.seed, "template": r.template, "benchmark": r.benchmark,
                     "data": r.data_lang, "instr": r.instr_lang, "n": res.n, "cond_only": res.cond_only,
                     "base_only": res.base_only, "mcnemar_p": res.p})
    out = pd.DataFrame(rows, columns=["condition", "seed", "template", "benchmark", "data", "instr", "n", "cond_only",
                                      "base_only", "mcnemar_p"])
    out["mcnemar_p_holm"] = stats.holm(out["mcnemar_p"].to_numpy(float))
    out["mcnemar_p_bh"] = stats.benjamini_hochberg(out["mcnemar_p"].to_numpy(float))
    return out

