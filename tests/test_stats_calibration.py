"""benchmarks/stats_calibration.py scaled down: the report's default tests keep their level, the original's do not.

Seeded, so the rates are fixed numbers; the bounds leave three binomial sds of room around the goals
(type-I 0.04–0.06, coverage 93–97%) at 150 simulated SIB-200-sized comparisons.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import stats_calibration as calibration  # noqa: E402


@pytest.fixture(scope="module")
def null():
    cells = [calibration.run_cell(("paper", "sib200", 204, 3, "null", 150, 11))]
    return calibration.summarise(cells, ("scenario",))[("null",)]


def test_default_tests_hold_their_level_under_the_null(null):
    for test in ("signflip", "mcnemar_per_run", "seed_t", "z_observed_n"):
        assert null[test] <= 0.095, test
    assert null["item_boot_ci"] >= 0.89 and null["seed_item_boot_ci"] >= 0.89


def test_the_originals_tests_reject_a_true_null_too_often(null):
    # the one-sample t takes the baseline as exact; the pooled McNemar counts 6 copies of every item
    assert null["one_sample_t"] >= 0.10 and null["mcnemar_pooled"] >= 0.10


def test_smoke_sized_cells_with_the_papers_n_look_significant_half_the_time():
    cells = [calibration.run_cell(("smoke", "sib200", 12, 3, "null", 60, 12))]
    rates = calibration.summarise(cells, ("scenario",))[("null",)]
    assert rates["z_paper_n"] >= 0.4 and rates["z_observed_n"] <= 0.1 and rates["signflip"] <= 0.1


def test_a_planted_effect_is_found_and_covered():
    cells = [calibration.run_cell(("paper", "csqa", 1000, 3, "+5 pp", 40, 13))]
    rates = calibration.summarise(cells, ("scenario",))[("+5 pp",)]
    assert rates["signflip"] >= 0.9 and rates["item_boot_ci"] >= 0.85
    assert "| signflip | paper | 3 |" in calibration.table(cells)
