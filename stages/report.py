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
the whole report is written, so a failed run leaves the previous report as it was, never a mix of two.
Missing files and cells are listed, not fatal: a (condition, cell) that some seed or template lacks is
left out of every seed aggregate rather than averaged unevenly.

This module parses the arguments and picks the phase; the report itself is stages/lib/phase3_report.py
(stages/lib/phase2_report.py), its tables stages/lib/report_frames.py and report_significance.py, its
staged write and declared names stages/lib/report_outputs.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from stages.lib import phase2_report, phase3_report, report_outputs, stats
from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.results_index import PUBLISHED, Grid, Index, ReportError, discover_published, expected_from_params


def build_index(args: argparse.Namespace) -> tuple[Index, dict, Grid]:
    """The results files to read, where that list came from (for provenance) and the grid of cells they hold:
    params' benchmarks and languages, or the published study's for a snapshot."""
    if args.published:
        return discover_published(args.published), {"mode": "published"}, PUBLISHED
    params = load_params(args.params)
    templates = params.evaluate.templates
    index = expected_from_params(params.evaluate.sessions, args.eval_dir, templates, args.reparsed_dir, params.phase)
    return index, {"mode": "params", "runs": {k: v.model_dump(mode="json") for k, v in sorted(params.runs.items())}}, \
        Grid.of(params.evaluate)


def options_of(args: argparse.Namespace) -> report_outputs.Options:
    return report_outputs.Options(
        out=Path(args.out), jobs=args.jobs, no_rows=args.no_rows, no_plots=args.no_plots,
        original_statistics=args.original_statistics, bootstrap_seed=args.bootstrap_seed,
        bootstrap_resamples=args.bootstrap_resamples)


def run_report(args: argparse.Namespace, err=None, into: Path | None = None) -> int:
    """The report of ``args``, written into ``into`` (``main``'s staging folder) or else ``args.out``."""
    err = err or sys.stderr
    out = into or Path(args.out)
    if args.params and (params := load_params(args.params)).phase == "phase2":
        return phase2_report.write_report(out, params, args.params, args.eval_dir, options_of(args), err)
    index, source, grid = build_index(args)
    return phase3_report.write_report(out, index, source, options_of(args), err, grid)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bootstrap_resamples < 1 or args.jobs < 1:
        print(f"report: error: --bootstrap-resamples and --jobs take a whole number >= 1, not "
              f"{min(args.bootstrap_resamples, args.jobs)}", file=sys.stderr)
        return 2
    try:
        return report_outputs.publish(Path(args.out), args.no_plots, lambda staging: run_report(args, into=staging))
    except (ReportError, stats.StatsError, ParamsError) as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    exit_stage(main)
