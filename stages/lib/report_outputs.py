"""What the report stage writes into its output folder (``reports/``), declared once.

Both report paths (Phase 3's and Phase 2's, stages/report.py) write exactly these entries, and dvc.yaml's
``report`` stage declares exactly these: :data:`OUTS` under ``outs:`` and :data:`METRICS` under ``metrics:``
(tests/test_dvc_yaml.py compares them; the stage refuses to publish a folder that differs).
"""

from __future__ import annotations

OUTS = (
    "tables.tex",  # the paper's 22 tables (Phase 2: a note that it has none)
    "tables",  # one CSV per paper table (Phase 2: phase2_summary.tsv)
    "analyses",  # the original's four published analyses
    "cells.tsv",
    "vs_baseline_cells.tsv",
    "conclusion_flips.tsv",
    "cross_seed_variance.tsv",
    "significance.tsv",
    "mcnemar.tsv",
    "scoring_comparison.tsv",
    "runs.csv",
    "missing.tsv",
    "provenance.json",
    "plots",  # the figures and the TSVs dvc.yaml's top-level plots read; absent with --no-plots
)
METRICS = ("metrics.json",)
OPTIONAL = ("plots",)  # what --no-plots leaves out


def undeclared(written: set[str], no_plots: bool = False) -> tuple[list[str], list[str]]:
    """(entries written but not declared, declared entries not written) for a report folder's entry names."""
    declared = set(OUTS) | set(METRICS)
    expected = declared - (set(OPTIONAL) if no_plots else set())
    return sorted(written - declared), sorted(expected - written)
