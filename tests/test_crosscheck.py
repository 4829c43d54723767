"""tools.crosscheck against the original's own scripts (../shared/reference/original-analysis/scripts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import crosscheck

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT.parent / "shared" / "reference" / "original-analysis" / "scripts"


@pytest.mark.skipif(not SCRIPTS.is_dir(), reason=f"the original's scripts are not at {SCRIPTS} (../shared beside the clone)")
def test_full_agreement_apart_from_the_documented_differences(tmp_path):
    outcomes, flag = crosscheck.crosscheck(SCRIPTS, tmp_path)
    lines = crosscheck.summary_lines(outcomes, flag)
    assert not [o.disagreements for o in outcomes if o.disagreements], "\n".join(lines)
    names = {o.name for o in outcomes}
    assert len([n for n in names if n.startswith("tables.tex ")]) == 22
    assert {"significance.tsv", "cells.tsv", "reparsed summaries", *crosscheck.analyses.OUTPUTS} <= names
    assert all(o.agree > 0 for o in outcomes), "an output compared nothing"
    documented = {k for o in outcomes for k in o.documented}
    assert documented <= set(crosscheck.DOCUMENTED) and "cells-n" in documented


def test_same_value_compares_at_the_printed_precision():
    assert crosscheck.same_value("0.5", "0.5000") and crosscheck.same_value("", "None")
    assert not crosscheck.same_value("0.5", "0.6") and not crosscheck.same_value("0.5000", "0.5001")
    assert not crosscheck.same_value("1.2", "1.3") and not crosscheck.same_value("x", "y")
    assert crosscheck.same_value("inf", "inf") and not crosscheck.same_value("", "0")


def test_tex_tables_read_labels_rows_numbers_and_marks():
    tex = "\n".join([r"\begin{table*}[t]", r"    Lang & Benchmark & C2 \\", r"    \midrule",
                     r"    es & \textsc{SIB-200} & \textbf{$-$7.0} \\", r"     & \textsc{XNLI} & 45.3\% \\",
                     r"    \bottomrule", r"\label{tab:x}", r"\end{table*}"])
    rows = crosscheck.tex_tables(tex)["tab:x"]["rows"]
    assert rows[("es", "SIB-200")] == [([-7.0], "bold")] and rows[("es", "XNLI")] == [([45.3], "")]
