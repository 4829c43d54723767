"""Does a built smoke workspace show the study's phenomena? The figures a smoke run must show (README).

    python benchmarks/smoke_signal.py                 # this checkout's built outputs
    python benchmarks/smoke_signal.py --root DIR      # another built workspace (a clone after `dvc repro`)
    python benchmarks/smoke_signal.py --no-fail       # print only; exit 0 whatever the figures

Reads ``params.yaml`` (``evaluate.sessions``: which sessions there are and where each wrote its
outputs), every session's ``*_results_<template>.json`` (the raw rows), ``reports/runs.csv`` and
``reports/cross_seed_variance.tsv``. Prints each figure with its threshold and PASS/FAIL, then the
descriptive figures the README quotes (accuracy range per benchmark, unclean answers per
instruction language), and one ``RESULT {json}`` line. Exit status 1 if a must-hold figure fails
(unless ``--no-fail``), 2 if an input is missing.

Units (the report's own):
- an answer *dominates* a (session, template x cell) entry of a results file when one strict
  ``pred`` value (``None`` is a value) takes >= 90% of its rows;
- strict vs refined and parse failures: the rows of ``runs.csv`` (condition, seed, template, cell);
- an adapter's change: its rows whose strict ``pred`` differs from the baseline's on the same
  prompt (same template, cell and row index), over every prompt both sessions scored;
- seed spread: the conditions with two seeds or more (the 5k tiers), accuracy (refined) averaged
  over templates per (condition, seed, cell) as ``cross_seed_variance.tsv`` does
  (stages/lib/stats.py ``collapse_templates``), then its sd over seeds per (condition, cell): the
  sd of a Δ vs baseline equals the sd of the accuracy, the baseline being one value per cell.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from stages.lib.paths import BASELINE  # the session that scores the base model, as the pipeline names it
DOMINANT_SHARE = 0.90  # one answer on >= 90% of an entry's rows
MAX_DOMINATED = 0.20
MIN_STRICT_NE_REFINED = 0.25
MIN_PARSE_FAILURES = 0.25
MIN_CHANGED = 0.05
MIN_SEED_SD = 0.50
EPS = 1e-12

Rows = list[dict]
Results = dict[str, dict[str, Rows]]  # session -> results key (template<k>_<bench>_data=.._instr=..) -> rows


class SignalInputError(Exception):
    """A missing or unreadable input; the message names the file."""


# --------------------------------------------------------------------------- reading


def read_results(root: Path) -> Results:
    """Every session of ``params.yaml`` -> its results entries (the ``*_results_<template>.json`` files)."""
    params_path = root / "params.yaml"
    try:
        sessions = yaml.safe_load(params_path.read_text(encoding="utf-8"))["evaluate"]["sessions"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise SignalInputError(f"{params_path}: cannot read evaluate.sessions ({error})") from None
    out: Results = {}
    for session, where in sessions.items():
        folder = root / where["out"]
        files = sorted(folder.glob("*_results_*.json"))
        if not files:
            raise SignalInputError(f"{folder}: no *_results_*.json for session {session}; build it (`dvc repro evaluate@{session}`)")
        entries: dict[str, Rows] = {}
        for path in files:
            body = json.loads(path.read_text(encoding="utf-8"))
            entries.update({key: rows for key, rows in body.items() if isinstance(rows, list)})
        out[session] = entries
    return out


def read_table(path: Path, delimiter: str) -> list[dict]:
    if not path.is_file():
        raise SignalInputError(f"{path}: missing; build the report (`dvc repro report`)")
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


# --------------------------------------------------------------------------- the figures (pure)


def share(hits: int, total: int) -> float:
    return hits / total if total else math.nan


def dominated_share(results: Results, threshold: float = DOMINANT_SHARE) -> tuple[float, int]:
    """(share of (session, entry) pairs whose most frequent strict pred takes >= ``threshold`` of the rows, pairs)."""
    pairs = dominated = 0
    for entries in results.values():
        for rows in entries.values():
            if not rows:
                continue
            pairs += 1
            top = Counter(row["pred"] for row in rows).most_common(1)[0][1]
            dominated += top / len(rows) >= threshold
    return share(dominated, pairs), pairs


def scoring_shares(runs: Sequence[Mapping[str, str]]) -> dict[str, float]:
    """Share of runs.csv rows where strict != refined accuracy, and where the strict parse-failure rate is > 0."""
    differ = sum(abs(float(r["acc_strict"]) - float(r["acc_refined"])) > EPS for r in runs)
    failing = sum(float(r["pf_strict"]) > EPS for r in runs)
    return {"strict_ne_refined": share(differ, len(runs)), "parse_failures": share(failing, len(runs)), "cells": len(runs)}


def changed_vs_baseline(results: Results, baseline: str = BASELINE) -> dict[str, float]:
    """Per adapter session: share of its rows whose strict pred differs from the baseline's on the same prompt."""
    base = results[baseline]
    out = {}
    for session, entries in results.items():
        if session == baseline:
            continue
        compared = changed = 0
        for key, rows in entries.items():
            for mine, theirs in zip(rows, base.get(key, ())):
                compared += 1
                changed += mine["pred"] != theirs["pred"]
        out[session] = share(changed, compared)
    return out


def seed_sd_share(runs: Sequence[Mapping[str, str]], value: str = "acc_refined") -> tuple[float, int]:
    """(share of multi-seed conditions' cells whose template-averaged ``value`` has sd > 0 over seeds, cells)."""
    by_seed: dict[tuple, list[float]] = defaultdict(list)
    for r in runs:
        by_seed[(r["condition"], r["benchmark"], r["data_lang"], r["instr_lang"], r["seed"])].append(float(r[value]))
    per_cell: dict[tuple, list[float]] = defaultdict(list)
    for (*cell, _seed), values in by_seed.items():
        per_cell[tuple(cell)].append(statistics.fmean(values))
    spread = [statistics.stdev(values) > EPS for cell, values in per_cell.items() if len(values) >= 2]
    return share(sum(spread), len(spread)), len(spread)


def variance_nontrivial(variance: Sequence[Mapping[str, str]]) -> bool:
    """Whether cross_seed_variance.tsv has one finite, non-zero sd."""
    sds = [float(r["sd_pp"]) for r in variance if r.get("sd_pp") not in (None, "", "nan", "NaN")]
    return any(math.isfinite(sd) and abs(sd) > EPS for sd in sds)


def accuracy_ranges(runs: Sequence[Mapping[str, str]]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per benchmark and scoring (strict, refined): (min, mean, max) accuracy over runs.csv rows."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"strict": [], "refined": []})
    for r in runs:
        values[r["benchmark"]]["strict"].append(float(r["acc_strict"]))
        values[r["benchmark"]]["refined"].append(float(r["acc_refined"]))
    return {bench: {kind: (min(v), statistics.fmean(v), max(v)) for kind, v in kinds.items()} for bench, kinds in values.items()}


def unclean_by_instr(results: Results) -> dict[str, float]:
    """Per instruction language: share of rows whose raw output is not a clean label: the strict pred is None,
    or the raw output (stripped) is not exactly that pred, the label in its gold form (``correct`` is
    ``pred == gold``), e.g. a native-script label, ``答案是B`` or a trailing explanation."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entries in results.values():
        for key, rows in entries.items():
            lang = key.rsplit("_instr=", 1)[1]
            for row in rows:
                counts[lang][0] += row["pred"] is None or row["raw_output"].strip() != row["pred"]
                counts[lang][1] += 1
    return {lang: share(bad, total) for lang, (bad, total) in counts.items()}


def checks(figures: Mapping) -> list[dict]:
    """The must-hold lines: what, figure, threshold, passed."""
    changed = figures["changed_vs_baseline"]
    lowest = min(changed.values()) if changed else math.nan

    def line(what: str, value, op: str, goal):
        ok = bool(value >= goal if op == ">=" else value <= goal) if not (isinstance(value, float) and math.isnan(value)) else False
        return {"what": what, "value": value, "op": op, "goal": goal, "pass": ok}

    return [
        line("(session, entry) pairs with one answer on >= 90% of rows", figures["dominated"], "<=", MAX_DOMINATED),
        line("cells with strict != refined accuracy", figures["strict_ne_refined"], ">=", MIN_STRICT_NE_REFINED),
        line("cells with parse-failure rate > 0 (strict)", figures["parse_failures"], ">=", MIN_PARSE_FAILURES),
        line("smallest share of an adapter's predictions changed vs baseline", lowest, ">=", MIN_CHANGED),
        line("multi-seed (5k) conditions' cells with seed sd > 0", figures["seed_sd"], ">=", MIN_SEED_SD),
        {"what": "cross_seed_variance.tsv has a non-zero sd", "value": figures["variance_nontrivial"], "op": "==",
         "goal": True, "pass": bool(figures["variance_nontrivial"])},
    ]


def figures_of(results: Results, runs: Sequence[Mapping[str, str]], variance: Sequence[Mapping[str, str]]) -> dict:
    dominated, pairs = dominated_share(results)
    scoring = scoring_shares(runs)
    seed_sd, seed_cells = seed_sd_share(runs)
    return {
        "dominated": dominated, "pairs": pairs,
        "strict_ne_refined": scoring["strict_ne_refined"], "parse_failures": scoring["parse_failures"], "cells": scoring["cells"],
        "changed_vs_baseline": changed_vs_baseline(results),
        "seed_sd": seed_sd, "seed_cells": seed_cells,
        "variance_nontrivial": variance_nontrivial(variance),
        "accuracy": accuracy_ranges(runs),
        "unclean_by_instr": unclean_by_instr(results),
    }


# --------------------------------------------------------------------------- printing


def pct(value) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else f"{100 * value:5.1f}%"


def render(figures: Mapping, lines: Iterable[dict]) -> str:
    out = ["must hold:"]
    for line in lines:
        value, goal = (line["value"], line["goal"]) if isinstance(line["goal"], bool) else (pct(line["value"]).strip(), pct(line["goal"]).strip())
        out.append(f"  {'PASS' if line['pass'] else 'FAIL'}  {line['what']}: {value} (goal {line['op']} {goal})")
    out.append(f"    over {figures['pairs']} (session, entry) pairs, {figures['cells']} runs.csv cells, "
               f"{figures['seed_cells']} multi-seed cells")
    out.append("  per adapter session, predictions changed vs baseline:")
    for session, value in sorted(figures["changed_vs_baseline"].items(), key=lambda kv: kv[1]):
        out.append(f"    {pct(value)}  {session}{'  < 5%' if value < MIN_CHANGED else ''}")
    out.append("accuracy per benchmark over cells (min / mean / max):")
    for bench, kinds in figures["accuracy"].items():
        parts = [f"{kind} {lo:.3f} / {mean:.3f} / {hi:.3f}" for kind, (lo, mean, hi) in kinds.items()]
        out.append(f"  {bench:9s} " + "; ".join(parts))
    out.append("rows whose raw output is not a clean label, per instruction language:")
    out.append("  " + ", ".join(f"{lang} {pct(value).strip()}" for lang, value in sorted(figures["unclean_by_instr"].items())))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="a built workspace (default: this checkout)")
    parser.add_argument("--no-fail", action="store_true", help="print only; exit 0 even if a figure fails")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        results = read_results(root)
        if BASELINE not in results:
            raise SignalInputError(f"{root / 'params.yaml'}: evaluate.sessions has no baseline to compare with")
        runs = read_table(root / "reports" / "runs.csv", ",")
        variance = read_table(root / "reports" / "cross_seed_variance.tsv", "\t")
    except SignalInputError as error:
        print(f"smoke_signal: {error}", file=sys.stderr)
        return 2
    figures = figures_of(results, runs, variance)
    lines = checks(figures)
    print(render(figures, lines))
    failed = [line["what"] for line in lines if not line["pass"]]
    print("RESULT " + json.dumps({"root": str(root), "failed": len(failed), "checks": lines,
                                  "changed_vs_baseline": figures["changed_vs_baseline"]}, default=str))
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
