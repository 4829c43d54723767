"""The report's tidy tables, as pure functions of the runs frame (stages/lib/results_index.py's).

What a report lacks (:func:`missing_cells`, :func:`complete_groups`, :func:`missing_lines`), each fine-tuned
run against the baseline (:func:`vs_baseline`), the cells whose sign of Δ flips between the strict and refined
extractors (:func:`conclusion_flips`, ±0.01 rule), the spread over seeds (:func:`cross_seed_variance`), Δ per
scoring (:func:`scoring_comparison`) and ``metrics.json`` (:func:`metrics`). Rows come in the study's order
(stages/lib/paper_order.py); the columns are the published files'.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from stages.lib import stats
from stages.lib.paper_order import sort_rows
from stages.lib.results_index import (BASELINE, BENCHMARKS, PUBLISHED, RUN_COLUMNS, Grid, Index, ReportError, expected_cells,
                                      seed_sort_key)

CELL = ["benchmark", "data_lang", "instr_lang"]
PAIR = ["template", *CELL]
FLIP_FLOOR = 0.01
MISSING_COLUMNS = ["what", "condition", "seed", "template", "benchmark", "data", "instr", "detail"]
RENAME_OUT = {"data_lang": "data", "instr_lang": "instr"}


# --- completeness --------------------------------------------------------------------------------------


SCORED = {"acc_strict": "no strict accuracy: the cell is absent from the _summary_",
          "acc_refined": "no refined accuracy: the cell has no rows in the _results_ and no _summary_reparsed_ entry"}


def missing_cells(runs: pd.DataFrame, index: Index, correct: dict | None = None, grid: Grid = PUBLISHED) -> list[dict]:
    """Cells a loaded session should have (``grid``) and does not, or has without one of its scorings;
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
            wanted = expected_cells(session.condition, grid=grid)
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


def missing_lines(missing: list[dict], grid: Grid = PUBLISHED) -> list[str]:
    """stderr's view of missing.tsv: one line per session for absent cells, a benchmark absent whole said once."""
    lines, cells = [], {}
    for row in missing:
        if row["what"] == "cell":
            cells.setdefault((row["condition"], row["seed"], row["template"]), []).append(row)
            continue
        where = " ".join(f"{k}={row[k]}" for k in MISSING_COLUMNS[1:7] if row.get(k) not in (None, ""))
        lines.append(f"{row['what']}: {where}: {row['detail']}")
    for (condition, seed, template), rows in cells.items():
        full = {b: len([c for c in expected_cells(condition, grid=grid) if c[1] == b and f"template{c[0]}" == template])
                for b in grid.benchmarks}
        parts = []
        for bench in grid.benchmarks:
            mine = [r for r in rows if r["benchmark"] == bench]
            if mine and len(mine) == full[bench] and template != "all":
                parts.append(f"{bench} (all {len(mine)})")
            else:
                parts += [f"{bench} data={r['data']} instr={r['instr']}" for r in mine]
        lines.append(f"cells of {condition} seed{seed} {template}: {', '.join(parts)}")
    return lines


# --- the tidy tables -------------------------------------------------------------------------------------


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
    return sort_rows(out, ["condition", "benchmark", "instr", "data"])

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
    return sort_rows(out, ["condition", "benchmark"], benchmarks)


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

