"""report: the study's tables, statistics and plots from the evaluation results.

    python -m stages.report --params params.yaml --eval-dir metrics/eval --out reports   # the DVC stage
    python -m stages.report --published DIR --out OUT          # a published snapshot (phase3/conditions/...)
    python -m stages.report --published DIR --out OUT --original-statistics --jobs 2 --no-plots

Reads the published layout ``phase3/conditions/<condition>/seed<N|none>/<condition>_seed<N>_<kind>_<template>.json``:
strict numbers from ``_summary_`` (or the summary inside ``_results_``),
refined ones from ``_summary_reparsed_`` (reparsed in memory from ``_results_`` where absent),
log-likelihood ones from ``_summary_loglik_`` where present, and per-example correctness from the
``_results_`` rows. With ``--params`` the expected files come from the runs of params.yaml (never a glob);
with ``--published`` every file of the snapshot is read and misfiled duplicates are resolved by the folder.

Writes into OUT (every file deterministic; the columns are the published files'):

- ``cells.tsv`` strict vs refined per cell (with ``n`` filled); ``runs.csv`` one row per run × cell;
- ``vs_baseline_cells.tsv``, ``conclusion_flips.tsv`` (±0.01 sign rule);
- ``cross_seed_variance.tsv`` (Δrep in pp per seed, mean, sd ddof=1, min, max, verdict);
- ``significance.tsv`` per (condition, cell): by default the calibrated set (the rows each cell
  scored as n, a seed t that is NaN with a note where undefined, the pooled z without markers,
  a paired sign-flip test of the per-item differences giving the markers, an item-only and a seed × item
  bootstrap CI); ``--original-statistics`` (alias ``--xnli-n-original``) writes the original's columns
  as it computed them; ``mcnemar.tsv`` the exact McNemar test per run;
- ``scoring_comparison.tsv`` Δ vs baseline per condition × benchmark under strict, refined and
  log-likelihood scoring; ``metrics.json`` (benchmark → condition → a few numbers, for ``dvc metrics diff``);
- ``tables.tex`` the paper's 22 tables and ``tables/<label>.csv`` one per table;
- ``analyses/`` the original's four published analyses (stages/lib/analyses.py): ``xnli-label-distributions.tsv``,
  ``sib200-category-accuracy.tsv``, ``correct-via-constant-rates.tsv`` and the comparison framework's
  ``framework_{template,same_language,data_volume}_comparison.tsv`` (Phase 3 only);
- ``plots/`` the figures as PNG, PDF and SVG plus the TSVs dvc plots reads (stages/lib/figures.py), unless
  ``--no-plots`` or matplotlib is missing;
- ``missing.tsv`` what was expected and not found (also on stderr), ``provenance.json`` args and versions.

With a Phase 2 params.yaml (``phase: phase2``) the report reads each session's
``english_prompt_results.json`` and ``native_prompt_results.json`` (strict
scoring only, one seed) and writes the same files in the same schemas, strict columns filled
(``metrics.json`` keys line up with Phase 3's for ``dvc metrics diff phase2 phase3``), McNemar per
cell against the baseline, the Phase 2 summary's headline table as ``tables/phase2_summary.tsv`` (accuracy % and Δ pp,
1 dp) and no paper tables (``tables.tex`` says so).

A malformed file, a bad cell key or an ambiguous duplicate stops the report with a message naming the
file (exit 1). Everything is written into a hidden folder beside OUT first and moved into OUT only once
the whole report is written, so a failed run leaves the previous report as it was, never a mix of two. Missing files and cells are listed, not fatal: a (condition, cell) that some seed or
template lacks is left out of every seed aggregate rather than averaged unevenly.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stages.lib import analyses, figures, paper_tables, phase2_results, report_outputs, stats
from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.provenance import code_provenance, content_provenance, write_json
from stages.lib.results_index import (
    BASELINE, BENCHMARKS, LANGS, ROW_COLUMNS, RUN_COLUMNS, TEMPLATES, Index, ReportError, condition_sort,
    discover_published, display_name, expected_cells, expected_from_params, load_rows, load_sessions, seed_sort_key,
)

REPORT_PACKAGES = ("matplotlib", "numpy", "pandas", "scipy")
CELL = ["benchmark", "data_lang", "instr_lang"]
PAIR = ["template", *CELL]
FLIP_FLOOR = 0.01
MAX_LISTED = 200  # lines about missing things printed on stderr; missing.tsv has them all
MISSING_COLUMNS = ["what", "condition", "seed", "template", "benchmark", "data", "instr", "detail"]
RENAME_OUT = {"data_lang": "data", "instr_lang": "instr"}


# --- text output ---------------------------------------------------------------------------------------


def _fmt(value, digits: int | None) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}f}" if digits is not None else repr(float(value))
    return str(value)


def write_table(path: Path, frame: pd.DataFrame, digits: dict[str, int] | None = None, sep: str = "\t") -> None:
    """A TSV/CSV with fixed decimals per column and empty fields for NaN: same frame, same bytes."""
    digits = digits or {}
    lines = [sep.join(frame.columns)]
    columns = [(frame[c].tolist(), digits.get(c)) for c in frame.columns]
    for i in range(len(frame)):
        lines.append(sep.join(_fmt(values[i], d) for values, d in columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- completeness --------------------------------------------------------------------------------------


SCORED = {"acc_strict": "no strict accuracy: the cell is absent from the _summary_",
          "acc_refined": "no refined accuracy: the cell has no rows in the _results_ and no _summary_reparsed_ entry"}


def missing_cells(runs: pd.DataFrame, index: Index, correct: dict | None = None) -> list[dict]:
    """Cells a loaded session should have (the evaluation grid) and does not, or has without one of its scorings;
    with ``correct`` (per-example rows were read), cells whose ``_results_`` file has no rows for them."""
    rows = []
    for session in index.sessions:
        mine = runs[(runs["condition"] == session.condition) & (runs["seed"] == session.seed)]
        if session.template != "all":
            mine = mine[mine["template"] == int(session.template[8:])]
        for _, run in mine.iterrows():
            where = {"condition": session.condition, "seed": session.seed, "template": f"template{run['template']}",
                     "benchmark": run["benchmark"], "data": run["data_lang"], "instr": run["instr_lang"]}
            gaps = [detail for column, detail in SCORED.items() if pd.isna(run[column])]
            key = (session.condition, session.seed, run["template"], run["benchmark"], run["data_lang"], run["instr_lang"])
            if correct and "results" in session.files and key not in correct:
                gaps.append("no per-example rows in the _results_ file (left out of McNemar and the paired bootstrap)")
            rows += [{"what": "scoring", **where, "detail": detail} for detail in gaps]
        try:
            wanted = expected_cells(session.condition)
        except ReportError:
            continue  # a name outside the study's grid: nothing to compare against
        if session.template != "all":
            wanted = [w for w in wanted if f"template{w[0]}" == session.template]
        have = set(zip(mine["template"], mine["benchmark"], mine["data_lang"], mine["instr_lang"]))
        for t, b, d, i in wanted:
            if (t, b, d, i) not in have:
                rows.append({"what": "cell", "condition": session.condition, "seed": session.seed, "template": f"template{t}",
                             "benchmark": b, "data": d, "instr": i, "detail": "cell absent from the session's files"})
    return rows


def complete_groups(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Keep the (condition, cell) groups that every seed × template of the condition has.

    A group that one seed or template lacks would make a seed mean uneven: it is listed and left
    out of the aggregates (its present runs stay in cells.tsv, runs.csv and vs_baseline_cells.tsv).
    """
    seeds = runs.groupby("condition")["seed"].nunique()
    templates = runs.groupby("condition")["template"].nunique()
    size = runs.groupby(["condition", *CELL])["seed"].transform("size")
    scored = runs.groupby(["condition", *CELL])["acc_refined"].transform("count")  # the aggregates' accuracy
    full = runs["condition"].map(seeds) * runs["condition"].map(templates)
    ok = ((size == full) & (scored == full)).to_numpy()
    dropped = []
    for key, group in runs[~ok].groupby(["condition", *CELL], sort=False):
        whole = len(group) == seeds[key[0]] * templates[key[0]]  # every run there, some without a refined accuracy
        have = sorted(f"seed{s}/template{t}" for s, t, a in zip(group["seed"], group["template"], group["acc_refined"])
                      if not whole or pd.notna(a))
        what = "a refined accuracy in " if whole else ""
        dropped.append({"what": "incomplete", "condition": key[0], "seed": "", "template": "", "benchmark": key[1],
                        "data": key[2], "instr": key[3],
                        "detail": f"{what}only {', '.join(have)} of {seeds[key[0]]} seeds x {templates[key[0]]} templates; left out of aggregates"})
    return runs[ok].reset_index(drop=True), dropped


# --- the tidy tables -------------------------------------------------------------------------------------


def missing_lines(missing: list[dict]) -> list[str]:
    """stderr's view of missing.tsv: one line per session for absent cells, a benchmark absent whole said once."""
    lines, cells = [], {}
    for row in missing:
        if row["what"] == "cell":
            cells.setdefault((row["condition"], row["seed"], row["template"]), []).append(row)
            continue
        where = " ".join(f"{k}={row[k]}" for k in MISSING_COLUMNS[1:7] if row.get(k) not in (None, ""))
        lines.append(f"{row['what']}: {where}: {row['detail']}")
    for (condition, seed, template), rows in cells.items():
        full = {b: len([c for c in expected_cells(condition) if c[1] == b and f"template{c[0]}" == template]) for b in BENCHMARKS}
        parts = []
        for bench in BENCHMARKS:
            mine = [r for r in rows if r["benchmark"] == bench]
            if mine and len(mine) == full[bench] and template != "all":
                parts.append(f"{bench} (all {len(mine)})")
            else:
                parts += [f"{bench} data={r['data']} instr={r['instr']}" for r in mine]
        lines.append(f"cells of {condition} seed{seed} {template}: {', '.join(parts)}")
    return lines


def cells_table(runs: pd.DataFrame) -> pd.DataFrame:
    out = runs[RUN_COLUMNS + ["n"]].rename(columns=RENAME_OUT)
    out["orig_acc"] = runs["acc_strict"].round(4)
    out["repar_acc"] = runs["acc_refined"].round(4)
    out["delta_acc"] = (runs["acc_refined"] - runs["acc_strict"]).round(4)
    out["orig_pf"] = runs["pf_strict"].round(4)
    out["repar_pf"] = runs["pf_refined"].round(4)
    out["delta_pf"] = (runs["pf_refined"] - runs["pf_strict"]).round(4)
    return out


def vs_baseline(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Each fine-tuned run × cell against the baseline's same (template, cell), within one scoring."""
    base = runs[runs["condition"] == BASELINE][PAIR + ["acc_strict", "acc_refined", "acc_loglik", "pf_strict", "pf_refined"]]
    base = base.rename(columns={c: f"b_{c}" for c in base.columns if c not in PAIR})
    cond = runs[runs["condition"] != BASELINE]
    merged = cond.merge(base, on=PAIR, how="left", validate="many_to_one")
    lacking = merged["b_acc_strict"].isna() & merged["b_acc_refined"].isna()
    missing = [{"what": "baseline", "condition": r.condition, "seed": r.seed, "template": f"template{r.template}",
                "benchmark": r.benchmark, "data": r.data_lang, "instr": r.instr_lang, "detail": "no baseline cell to compare with"}
               for r in merged[lacking].itertuples()]
    merged = merged[~lacking]
    out = merged[RUN_COLUMNS].copy()
    for tag, col in (("orig", "acc_strict"), ("rep", "acc_refined"), ("loglik", "acc_loglik")):
        out[f"baseline_{tag}"] = merged[f"b_{col}"].round(4).to_numpy()
        out[f"cond_{tag}"] = merged[col].round(4).to_numpy()
        out[f"delta_{tag}"] = (merged[col] - merged[f"b_{col}"]).round(4).to_numpy()
    out["baseline_pf_orig"] = merged["b_pf_strict"].round(4).to_numpy()
    out["cond_pf_orig"] = merged["pf_strict"].round(4).to_numpy()
    out["baseline_pf_rep"] = merged["b_pf_refined"].round(4).to_numpy()
    out["cond_pf_rep"] = merged["pf_refined"].round(4).to_numpy()
    return out.reset_index(drop=True), missing


VS_COLUMNS = ["condition", "seed", "template", "benchmark", "data", "instr", "baseline_orig", "cond_orig", "delta_orig",
              "baseline_rep", "cond_rep", "delta_rep", "baseline_pf_orig", "cond_pf_orig", "baseline_pf_rep", "cond_pf_rep"]


def sign(x: float) -> int:
    return 1 if x > FLIP_FLOOR else -1 if x < -FLIP_FLOOR else 0


def conclusion_flips(vs: pd.DataFrame) -> pd.DataFrame:
    so, sr = vs["delta_orig"].map(sign), vs["delta_rep"].map(sign)
    flips = vs[(so != sr) & (so != 0) & (sr != 0)].rename(columns=RENAME_OUT)
    out = flips[["condition", "seed", "template", "benchmark", "data", "instr", "baseline_orig", "cond_orig", "delta_orig",
                 "baseline_rep", "cond_rep", "delta_rep"]].copy()
    out["verdict"] = ["win→loss" if d > 0 else "loss→win" for d in flips["delta_orig"]]
    return out.reset_index(drop=True)


def cross_seed_variance(vs: pd.DataFrame) -> pd.DataFrame:
    """Per seed Δrep (pp) per (condition, benchmark, instr, data | ALL), then over seeds."""
    frame = vs[RUN_COLUMNS + ["delta_rep"]].dropna(subset=["delta_rep"]).rename(columns={"delta_rep": "value"})
    frame["value"] = frame["value"] * 100
    parts = []
    for cell, data in ((["benchmark", "instr_lang"], "ALL"), (CELL, None)):
        per_seed = stats.collapse_templates(frame, "value", cell)
        if data:
            per_seed["data_lang"] = data
        parts.append(per_seed)
    per_seed = pd.concat(parts, ignore_index=True)
    rows = []
    for key, group in per_seed.groupby(["condition", "benchmark", "instr_lang", "data_lang"], sort=False):
        group = group.sort_values("seed", key=lambda s: s.map(seed_sort_key))
        x = group["value"].to_numpy(float)
        rows.append({
            "condition": key[0], "benchmark": key[1], "instr": key[2], "data": key[3], "n_seeds": int(x.size),
            "seeds": ",".join(group["seed"]), "per_seed_pp": ",".join(f"{v:.4f}" for v in x),
            "mean_pp": float(x.mean()), "sd_pp": float(x.std(ddof=1)) if x.size > 1 else math.nan,
            "min_pp": float(x.min()), "max_pp": float(x.max()), "verdict": stats.robustness(x),
        })
    out = pd.DataFrame(rows, columns=["condition", "benchmark", "instr", "data", "n_seeds", "seeds", "per_seed_pp",
                                      "mean_pp", "sd_pp", "min_pp", "max_pp", "verdict"])
    order = sorted(range(len(out)), key=lambda i: (
        condition_sort(out["condition"].iat[i]), BENCHMARKS.index(out["benchmark"].iat[i]), LANGS.index(out["instr"].iat[i]),
        -1 if out["data"].iat[i] == "ALL" else LANGS.index(out["data"].iat[i])))
    return out.iloc[order].reset_index(drop=True)


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


def statistics_mode(args: argparse.Namespace) -> str:
    """provenance.json's name for the statistics of significance.tsv."""
    return "original (build_significance.py as published)" if args.original_statistics else "calibrated"


def significance_columns(original: bool) -> list[str]:
    """significance.tsv's header: the original's columns, or the calibrated set and its paired tests."""
    if original:
        return [RENAME_OUT.get(c, c) for c in stats.ORIGINAL_SIGNIFICANCE_COLUMNS]
    return [RENAME_OUT.get(c, c) for c in stats.SIGNIFICANCE_COLUMNS] + PAIRED_SIGNIFICANCE + MARKERS


def significance(complete: pd.DataFrame, correct: dict, *, original: bool, boot_seed: int, boot_resamples: int,
                 err=None) -> pd.DataFrame:
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
        paired = [_paired(row, sorted(seeds[row.condition], key=seed_sort_key), correct, boot_seed, boot_resamples)
                  for row in table.itertuples()]
        paired = pd.DataFrame(paired, columns=PAIRED_SIGNIFICANCE)
        counts = ["mcnemar_runs", "mcnemar_runs_p05", "signflip_items", "signflip_nonzero"]
        paired[counts] = paired[counts].astype("Int64")
        table = pd.concat([table.reset_index(drop=True), paired], axis=1)
        table = stats.add_markers(table, "signflip_p", "signflip")
    out = table.rename(columns=RENAME_OUT)
    order = sorted(range(len(out)), key=lambda i: (condition_sort(out["condition"].iat[i]), BENCHMARKS.index(out["benchmark"].iat[i]),
                                                   LANGS.index(out["instr"].iat[i]), LANGS.index(out["data"].iat[i])))
    return out.iloc[order].reset_index(drop=True)[significance_columns(original)]


def _paired(row, seeds: list[str], correct: dict, boot_seed: int, boot_resamples: int) -> dict:
    """The per-item columns of one row: per-run McNemar count, sign-flip test, item and seed × item CIs.

    Item i's difference is the condition's share of right answers over its seed × template runs minus
    the baseline's over its templates; the seed × item CI uses the per-seed differences (templates
    averaged within a seed). Without per-example rows (``--no-rows``) these are NaN with a note.
    """
    cell = (row.benchmark, row.data_lang, row.instr_lang)
    base = [correct.get((BASELINE, "none", t, *cell)) for t in TEMPLATES]
    cond = [[correct.get((row.condition, seed, t, *cell)) for t in TEMPLATES] for seed in seeds]
    vectors = [v for v in base + sum(cond, []) if v is not None]
    if len(vectors) < len(TEMPLATES) * (len(seeds) + 1):
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


def scoring_comparison(vs: pd.DataFrame, complete_keys: pd.DataFrame, benchmarks: Sequence[str] = BENCHMARKS) -> pd.DataFrame:
    """Δ vs baseline per condition × benchmark under each scoring, over the complete groups."""
    frame = vs.merge(complete_keys, on=["condition", *CELL])
    rows = []
    for (condition, bench), g in frame.groupby(["condition", "benchmark"], sort=False):
        ds, dr, dl = g["delta_orig"].mean(), g["delta_rep"].mean(), g["delta_loglik"].mean()
        rows.append({"condition": condition, "benchmark": bench, "n_cells": len(g), "n_cells_loglik": int(g["delta_loglik"].notna().sum()),
                     "delta_strict": ds, "delta_refined": dr, "delta_loglik": dl,
                     "sign_strict": sign(ds), "sign_refined": sign(dr), "sign_loglik": "" if math.isnan(dl) else sign(dl),
                     "agree": "" if math.isnan(dl) else sign(ds) == sign(dr) == sign(dl)})
    out = pd.DataFrame(rows, columns=["condition", "benchmark", "n_cells", "n_cells_loglik", "delta_strict", "delta_refined",
                                      "delta_loglik", "sign_strict", "sign_refined", "sign_loglik", "agree"])
    order = sorted(range(len(out)), key=lambda i: (condition_sort(out["condition"].iat[i]), list(benchmarks).index(out["benchmark"].iat[i])))
    return out.iloc[order].reset_index(drop=True)


def metrics(complete: pd.DataFrame, vs_complete: pd.DataFrame, benchmarks: Sequence[str] = BENCHMARKS) -> dict:
    """benchmark -> condition -> a few 4-dp numbers (equal-weight means over cells), for dvc metrics diff.

    Both phases write this one schema (``acc_strict``, ``delta_strict``, ``n_seeds`` ...; a number a
    phase does not have, such as Phase 2's refined scores, is left out), so that
    ``dvc metrics diff phase2 phase3`` lines up the keys both have and shows the rest as added/removed.
    """
    out: dict = {}
    for bench in benchmarks:
        part = complete[complete["benchmark"] == bench]
        if part.empty:
            continue
        entry = {}
        for condition, g in part.groupby("condition"):
            numbers = {f"acc_{s}": g[f"acc_{s}"].mean() for s in ("strict", "refined", "loglik")}
            numbers["n_seeds"] = int(g["seed"].nunique())
            d = vs_complete[(vs_complete["condition"] == condition) & (vs_complete["benchmark"] == bench)]
            if condition != BASELINE and len(d):
                for tag, name in (("orig", "strict"), ("rep", "refined"), ("loglik", "loglik")):
                    numbers[f"delta_{name}"] = d[f"delta_{tag}"].mean()
                per_seed = d.groupby("seed")["delta_rep"].mean()
                numbers["seed_sd_refined"] = per_seed.std(ddof=1) if len(per_seed) > 1 else math.nan
            entry[condition] = {k: (v if isinstance(v, int) else round(float(v), 4)) for k, v in numbers.items()
                                if not (isinstance(v, float) and math.isnan(v))}
        out[bench] = entry
    return out


# --- plots ---------------------------------------------------------------------------------------------


def write_plots(folder: Path, vs: pd.DataFrame, runs: pd.DataFrame, sig: pd.DataFrame, vs_all: pd.DataFrame) -> str | None:
    """The figures (stages/lib/figures.py) in PNG, PDF and SVG; returns why none were written, or None."""
    return figures.write_figures(folder, vs, runs, sig, conclusion_flips(vs_all))


def write_analyses(folder: Path, sessions, runs: pd.DataFrame, *, jobs: int, with_rows: bool) -> None:
    """The original's four published analyses (stages/lib/analyses.py); without rows, their headers only."""
    rows = load_rows(sessions, ("xnli", "sib200"), jobs=jobs) if with_rows else pd.DataFrame(columns=ROW_COLUMNS)
    for name, frame in analyses.all_analyses(rows, runs).items():
        write_table(folder / name, frame, {c: 4 for c in analyses.FOUR_DP[analyses.OUTPUTS[name]]})


# --- the stage -----------------------------------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    """An input's name in provenance: under the input folder where it is there, never a machine path."""
    for base in (root, Path.cwd()):
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return path.name


def build_index(args: argparse.Namespace) -> tuple[Index, dict]:
    if args.published:
        return discover_published(args.published), {"mode": "published"}
    params = load_params(args.params)
    templates = params.evaluate.templates
    return expected_from_params(params.evaluate.sessions, args.eval_dir, templates, args.reparsed_dir, params.phase), {
        "mode": "params", "runs": {k: v.model_dump(mode="json") for k, v in sorted(params.runs.items())}}


def run_report(args: argparse.Namespace, err=None, into: Path | None = None) -> int:
    """The report of ``args``, written into ``into`` (``main``'s staging folder) or else ``args.out``."""
    err = err or sys.stderr
    out = into or Path(args.out)
    if args.params and (params := load_params(args.params)).phase == "phase2":
        return run_phase2_report(args, params, err, into)
    index, source = build_index(args)
    for notice in index.notices:
        print(f"report: {notice}", file=err)
    runs, correct, notes = load_sessions(index.sessions, jobs=args.jobs, with_rows=not args.no_rows)
    for note in notes:
        print(f"report: note: {note}", file=err)
    if runs.empty:
        raise ReportError(f"{index.root}: no results found")

    missing = list(index.missing) + missing_cells(runs, index, correct)
    complete, dropped = complete_groups(runs)
    vs_all, no_base = vs_baseline(runs)
    missing += dropped + no_base
    keys = complete[["condition", *CELL]].drop_duplicates()
    vs = vs_all.merge(keys, on=["condition", *CELL])
    vs = vs.dropna(subset=["delta_rep", "delta_orig"])

    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "cells.tsv", cells_table(runs), {c: 4 for c in ("orig_acc", "repar_acc", "delta_acc", "orig_pf", "repar_pf", "delta_pf")})
    four = {c: 4 for c in VS_COLUMNS[6:]}
    write_table(out / "vs_baseline_cells.tsv", vs_all.rename(columns=RENAME_OUT)[VS_COLUMNS], four)
    write_table(out / "conclusion_flips.tsv", conclusion_flips(vs_all), four)
    write_table(out / "cross_seed_variance.tsv", cross_seed_variance(vs), {c: 4 for c in ("mean_pp", "sd_pp", "min_pp", "max_pp")})
    sig = significance(complete, correct, original=args.original_statistics, boot_seed=args.bootstrap_seed,
                       boot_resamples=args.bootstrap_resamples, err=err)
    write_table(out / "significance.tsv", sig, SIGNIFICANCE_DIGITS)
    write_table(out / "mcnemar.tsv", mcnemar_runs(vs_all, correct), {"mcnemar_p": 6, "mcnemar_p_holm": 6, "mcnemar_p_bh": 6})
    write_table(out / "scoring_comparison.tsv", scoring_comparison(vs_all, keys),
                {"delta_strict": 4, "delta_refined": 4, "delta_loglik": 4})
    run_cols = RUN_COLUMNS + ["n", "acc_strict", "acc_refined", "pf_strict", "pf_refined"]
    if runs["acc_loglik"].notna().any():
        run_cols += ["acc_loglik"]
    write_table(out / "runs.csv", runs[run_cols], sep=",")
    write_json(out / "metrics.json", metrics(complete, vs))

    base = complete[complete["condition"] == BASELINE][PAIR].copy()
    base["orig"] = complete.loc[complete["condition"] == BASELINE, "acc_strict"].round(4).to_numpy()
    base["rep"] = complete.loc[complete["condition"] == BASELINE, "acc_refined"].round(4).to_numpy()
    tables = paper_tables.build_tables(vs, base)
    (out / "tables.tex").write_text(paper_tables.render_tex(tables), encoding="utf-8")
    for table in tables:
        (out / "tables").mkdir(exist_ok=True)
        (out / "tables" / f"{table.name}.csv").write_text(paper_tables.render_csv(table), encoding="utf-8")

    write_analyses(out / "analyses", index.sessions, runs, jobs=args.jobs, with_rows=not args.no_rows)

    plots = None if args.no_plots else write_plots(out / "plots", vs, runs, sig, vs_all)
    if plots:
        print(f"report: {plots}", file=err)

    missing_frame = pd.DataFrame(missing, columns=MISSING_COLUMNS)
    write_table(out / "missing.tsv", missing_frame)
    for line in missing_lines(missing)[:MAX_LISTED]:
        print(f"report: missing {line}", file=err)
    if len(missing_lines(missing)) > MAX_LISTED:
        print(f"report: ... and more missing (all in {Path(args.out) / 'missing.tsv'})", file=err)

    inputs = sorted(_relative(p, index.root) for s in index.sessions for p in s.files.values())
    record = content_provenance("report", {
        "source": source, "statistics": statistics_mode(args), "bootstrap_seed": args.bootstrap_seed,
        "bootstrap_resamples": args.bootstrap_resamples, "per_example_rows": not args.no_rows,
    }, {"inputs": inputs, "notices": index.notices, "notes": [n.replace(str(index.root), "<input>") for n in notes],
        "n_missing": len(missing), "plots": plots or "written" if not args.no_plots else "disabled"}, packages=REPORT_PACKAGES)
    record.update(code_provenance(Path(__file__).resolve().parents[1]))
    write_json(out / "provenance.json", record)
    print(f"report: {len(runs)} run cells, {len(vs_all)} vs baseline, {len(sig)} significance rows, "
          f"{len(tables)} tables, {len(missing)} missing -> {args.out}", file=err)
    return 0


# --- Phase 2: one seed, one wording per language, strict extractors only ------------


PHASE2_RUN_COLUMNS = RUN_COLUMNS + ["n", "acc_strict", "pf_strict"]
PHASE2_TABLES_TEX = (
    "% Phase 2 (params.yaml phase: phase2) has no paper tables: the paper's 22 tables are Phase 3's.\n"
    "% Its headline table (phase2-protocol.md section 9) is tables/phase2_summary.tsv.\n"
)


def write_phase2_plots(folder: Path, vs: pd.DataFrame, conditions: list[str], design: phase2_results.Design) -> str | None:
    """Strict Δ vs baseline (pp, mean over data languages) per condition × benchmark, one panel per prompt."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: plots skipped (pin matplotlib to get plots/*.png)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.hashsalt": "report", "font.size": 8})
    folder.mkdir(parents=True, exist_ok=True)
    conditions = [c for c in conditions if c != BASELINE]
    prompts = vs.assign(prompt=[phase2_results.prompt_of(r, design) for _, r in vs.iterrows()])
    width = 0.8 / len(design.benchmarks)
    fig, axes = plt.subplots(1, len(phase2_results.PROMPTS), figsize=(10, 4), sharey=True)
    for ax, prompt in zip(np.atleast_1d(axes), phase2_results.PROMPTS):
        part = prompts[prompts["prompt"] == prompt]
        for k, bench in enumerate(design.benchmarks):
            means = part[part["benchmark"] == bench].groupby("condition")["delta_orig"].mean() * 100
            ax.bar(np.arange(len(conditions)) + k * width, [means.get(c, np.nan) for c in conditions], width, label=bench)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(f"{prompt} prompt")
        ax.set_xticks(np.arange(len(conditions)) + 0.4 - width / 2, [display_name(c) for c in conditions], rotation=90)
    np.atleast_1d(axes)[0].set_ylabel("strict Δ vs baseline (pp)")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(folder / "deltas_vs_baseline.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return None


def run_phase2_report(args: argparse.Namespace, params, err, into: Path | None = None) -> int:
    """The report of a Phase 2 params.yaml: every file the stage declares, in Phase 3's schemas where
    they apply (strict columns filled, refined/log-likelihood ones empty), plus the Phase 2 summary's headline table.

    The sessions are exactly params' ``evaluate.sessions``; each ``out`` folder is read under ``--eval-dir``.
    """
    out = into or Path(args.out)
    design = phase2_results.Design.of(params)
    conditions = list(params.evaluate.sessions)
    sessions, missing = phase2_results.expected_sessions(params, args.eval_dir)
    runs, correct, absent, notes = phase2_results.load_sessions(sessions, design)
    for note in notes:
        print(f"report: note: {note}", file=err)
    if runs.empty:
        raise ReportError(f"{args.eval_dir}: no Phase 2 results found for the sessions of {args.params}")
    vs_all, no_base = vs_baseline(runs)
    missing += absent + no_base
    vs = vs_all.dropna(subset=["delta_orig"])
    keys = runs[["condition", *CELL]].drop_duplicates()

    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "cells.tsv", cells_table(runs), {c: 4 for c in ("orig_acc", "repar_acc", "delta_acc", "orig_pf", "repar_pf", "delta_pf")})
    four = {c: 4 for c in VS_COLUMNS[6:]}
    write_table(out / "vs_baseline_cells.tsv", vs_all.rename(columns=RENAME_OUT)[VS_COLUMNS], four)
    write_table(out / "conclusion_flips.tsv", conclusion_flips(vs_all), four)  # no refined scoring: never a flip
    write_table(out / "cross_seed_variance.tsv", cross_seed_variance(vs), {c: 4 for c in ("mean_pp", "sd_pp", "min_pp", "max_pp")})
    sig = significance(runs, correct, original=args.original_statistics, boot_seed=args.bootstrap_seed,
                       boot_resamples=args.bootstrap_resamples, err=err)  # refined accuracies only: header only in Phase 2
    write_table(out / "significance.tsv", sig, SIGNIFICANCE_DIGITS)
    write_table(out / "mcnemar.tsv", mcnemar_runs(vs_all, correct), {"mcnemar_p": 6, "mcnemar_p_holm": 6, "mcnemar_p_bh": 6})
    scoring = scoring_comparison(vs_all, keys, design.benchmarks)
    scoring["sign_refined"] = ""  # sign() of the absent refined Δ would read as "no change"
    write_table(out / "scoring_comparison.tsv", scoring, {"delta_strict": 4, "delta_refined": 4, "delta_loglik": 4})
    write_table(out / "runs.csv", runs[PHASE2_RUN_COLUMNS], sep=",")
    write_json(out / "metrics.json", metrics(runs, vs, design.benchmarks))

    summary = phase2_results.summary_table(runs, conditions, design)
    write_table(out / "tables" / "phase2_summary.tsv", summary, {c: 1 for c in summary.columns[4:]})
    (out / "tables.tex").write_text(PHASE2_TABLES_TEX, encoding="utf-8")
    # the four analyses read Phase 3's refined rows: declared outputs, so written with their headers only
    write_analyses(out / "analyses", [], runs.iloc[0:0], jobs=1, with_rows=False)

    plots = None if args.no_plots else write_phase2_plots(out / "plots", vs, conditions, design)
    if not args.no_plots:
        figures.write_plot_data(out / "plots", vs, runs, delta="delta_orig")  # the data dvc plots diff reads
    if plots:
        print(f"report: {plots}", file=err)

    write_table(out / "missing.tsv", pd.DataFrame(missing, columns=MISSING_COLUMNS))
    for row in missing[:MAX_LISTED]:
        where = " ".join(f"{k}={row[k]}" for k in MISSING_COLUMNS[1:7] if row.get(k) not in (None, ""))
        print(f"report: missing {row['what']}: {where}: {row['detail']}", file=err)

    root = Path(args.eval_dir)
    inputs = sorted(_relative(p, root) for s in sessions for p in s.files.values())
    record = content_provenance("report", {
        "source": {"mode": "params", "phase": "phase2", "sessions": conditions,
                   "runs": {k: v.model_dump(mode="json") for k, v in params.runs.items()}},
        "benchmarks": list(design.benchmarks), "data_langs": list(design.data_langs), "anchor_lang": design.anchor_lang,
        "scoring": "strict (the files' own summary and correct fields; no reparse)", "statistics": statistics_mode(args),
    }, {"inputs": inputs, "notes": [n.replace(str(root), "<input>") for n in notes], "n_missing": len(missing),
        "plots": plots or "written" if not args.no_plots else "disabled"}, packages=REPORT_PACKAGES)
    record.update(code_provenance(Path(__file__).resolve().parents[1]))
    write_json(out / "provenance.json", record)
    print(f"report: phase2: {len(runs)} run cells, {len(vs_all)} vs baseline, {len(summary)} summary rows, "
          f"{len(missing)} missing -> {args.out}", file=err)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--published", type=Path, help="a folder in the published layout (phase3/conditions/...)")
    source.add_argument("--params", type=Path, help="params.yaml: report the runs it lists (with --eval-dir)")
    parser.add_argument("--eval-dir", type=Path, default=Path("metrics/eval"), help="the evaluate stage's output folder")
    parser.add_argument("--reparsed-dir", type=Path, default=None,
                        help="with --params: where the reparse stage wrote the refined summaries (else reparsed in memory)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--original-statistics", action="store_true",
                        help="significance.tsv exactly as build_significance.py computed it (XNLI n = 2,505, its tests "
                             "and markers), to regenerate the published p values; default: the calibrated set")
    parser.add_argument("--xnli-n-original", dest="original_statistics", action="store_true",
                        help="the same as --original-statistics (its XNLI n of 2,505 is one part of it)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes reading results files")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap CIs")
    parser.add_argument("--bootstrap-resamples", type=int, default=10_000, help="bootstrap resamples per row")
    parser.add_argument("--no-rows", action="store_true", help="skip per-example rows (no McNemar; faster)")
    parser.add_argument("--no-plots", action="store_true", help="write no figures")
    return parser


def swap_in(staging: Path, out: Path) -> None:
    """Move every entry of ``staging`` into ``out``, each replacing its namesake (other files in ``out`` stay)."""
    out.mkdir(parents=True, exist_ok=True)
    old = staging.with_name(staging.name + ".old")
    old.mkdir()
    for entry in sorted(staging.iterdir()):
        if (out / entry.name).exists():
            (out / entry.name).rename(old / entry.name)
        entry.rename(out / entry.name)
    shutil.rmtree(old)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bootstrap_resamples < 1 or args.jobs < 1:
        print(f"report: error: --bootstrap-resamples and --jobs take a whole number >= 1, not "
              f"{min(args.bootstrap_resamples, args.jobs)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    staging = out.parent / f".{out.name}.report-{os.getpid()}"  # beside OUT: one filesystem, so renames
    try:
        for stale in out.parent.glob(f".{out.name}.report-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir(parents=True)
        code = run_report(args, into=staging)
        if code == 0:
            # dvc.yaml declares stages/lib/report_outputs.py's names: anything else would go unversioned
            extra, lacking = report_outputs.undeclared({entry.name for entry in staging.iterdir()}, args.no_plots)
            if extra or lacking:
                raise ReportError(f"{out}: wrote {extra} that stages/lib/report_outputs.py does not declare "
                                  f"and not {lacking} that it does")
            swap_in(staging, out)
        return code
    except (ReportError, stats.StatsError, ParamsError) as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(staging.with_name(staging.name + ".old"), ignore_errors=True)


if __name__ == "__main__":
    exit_stage(main)
