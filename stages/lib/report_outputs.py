"""What the report stage writes into its output folder (``reports/``), declared once, and how it writes it.

Both report paths (Phase 3's, stages/lib/phase3_report.py, and Phase 2's, stages/lib/phase2_report.py) write
exactly these entries, and dvc.yaml's ``report`` stage declares exactly these: :data:`OUTS` under ``outs:`` and
:data:`METRICS` under ``metrics:`` (tests/test_dvc_yaml.py compares them; :func:`publish` refuses to publish a
folder that differs). Tables are written by :func:`write_table` (fixed decimals per column, empty fields for
NaN: the same frame gives the same bytes); a report is written into a hidden folder beside its output folder
and moved in only once whole (:func:`publish`), so a failed run leaves the previous report as it was.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from stages.lib import report_frames as frames
from stages.lib.provenance import code_provenance, content_provenance
from stages.lib.report_significance import SIGNIFICANCE_DIGITS, mcnemar_runs
from stages.lib.results_index import ReportError

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
REPORT_PACKAGES = ("matplotlib", "numpy", "pandas", "scipy")
MAX_LISTED = 200  # lines about missing things printed on stderr; missing.tsv has them all
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Options:
    """How a report is computed and what it leaves out (``stages.report``'s options)."""

    out: Path  # the output folder as named on the command line (messages only)
    jobs: int = 1
    no_rows: bool = False
    no_plots: bool = False
    original_statistics: bool = False
    bootstrap_seed: int = 0
    bootstrap_resamples: int = 10_000

    @property
    def statistics_mode(self) -> str:
        """provenance.json's name for the statistics of significance.tsv."""
        return "original (build_significance.py as published)" if self.original_statistics else "calibrated"

    @property
    def plots_note(self) -> str:
        return "disabled" if self.no_plots else "written"


def undeclared(written: set[str], no_plots: bool = False) -> tuple[list[str], list[str]]:
    """(entries written but not declared, declared entries not written) for a report folder's entry names."""
    declared = set(OUTS) | set(METRICS)
    expected = declared - (set(OPTIONAL) if no_plots else set())
    return sorted(written - declared), sorted(expected - written)


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


def relative(path: Path, root: Path) -> str:
    """An input's name in provenance: under the input folder where it is there, never a machine path."""
    for base in (root, Path.cwd()):
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return path.name


def provenance(params: dict, extra: dict) -> dict:
    """provenance.json of a report: what it was asked, what it read, the packages and the code's commit."""
    record = content_provenance("report", params, extra, packages=REPORT_PACKAGES)
    record.update(code_provenance(REPO_ROOT))
    return record


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


def publish(out: Path, no_plots: bool, write: Callable[[Path], int]) -> int:
    """``write`` a report into a staging folder beside ``out``, check it holds the declared entries, move it in."""
    staging = out.parent / f".{out.name}.report-{os.getpid()}"  # beside OUT: one filesystem, so renames
    try:
        for stale in out.parent.glob(f".{out.name}.report-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir(parents=True)
        code = write(staging)
        if code == 0:
            # dvc.yaml declares this module's names: anything else would go unversioned
            extra, lacking = undeclared({entry.name for entry in staging.iterdir()}, no_plots)
            if extra or lacking:
                raise ReportError(f"{out}: wrote {extra} that stages/lib/report_outputs.py does not declare "
                                  f"and not {lacking} that it does")
            swap_in(staging, out)
        return code
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(staging.with_name(staging.name + ".old"), ignore_errors=True)


def write_comparisons(out: Path, runs: pd.DataFrame, vs_all: pd.DataFrame, vs: pd.DataFrame, sig: pd.DataFrame,
                      correct: dict) -> None:
    """The tables both phases write in one schema: cells, each run against the baseline, the flips, the
    spread over seeds, significance and McNemar."""
    write_table(out / "cells.tsv", frames.cells_table(runs),
                {c: 4 for c in ("orig_acc", "repar_acc", "delta_acc", "orig_pf", "repar_pf", "delta_pf")})
    four = {c: 4 for c in frames.VS_COLUMNS[6:]}
    write_table(out / "vs_baseline_cells.tsv", vs_all.rename(columns=frames.RENAME_OUT)[frames.VS_COLUMNS], four)
    write_table(out / "conclusion_flips.tsv", frames.conclusion_flips(vs_all), four)  # Phase 2: never a flip
    write_table(out / "cross_seed_variance.tsv", frames.cross_seed_variance(vs),
                {c: 4 for c in ("mean_pp", "sd_pp", "min_pp", "max_pp")})
    write_table(out / "significance.tsv", sig, SIGNIFICANCE_DIGITS)
    write_table(out / "mcnemar.tsv", mcnemar_runs(vs_all, correct), {"mcnemar_p": 6, "mcnemar_p_holm": 6, "mcnemar_p_bh": 6})
