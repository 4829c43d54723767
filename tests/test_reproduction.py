"""reproduction: our report against a published-format one, on the report of the synthetic published tree.

"Theirs" is ``stages.report --published`` over stages/lib/synthetic_published.py's tree (three seeds for the
5k conditions of cond 1 and 2, one elsewhere); "ours" is a copy with planted deviations.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest

from stages import report, reproduction as stage
from stages.lib import reproduction, synthetic_published


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("published")
    synthetic_published.write_tree(root / "tree")
    code = report.main(["--published", str(root / "tree"), "--out", str(root / "report"), "--no-plots", "--no-rows",
                        "--jobs", "1", "--bootstrap-resamples", "50"])
    assert code == 0
    return root / "report"


def read_tsv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_tsv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def set_cell(rows: list[dict], key: tuple, value: float) -> None:
    """Every seed and template of one cell (condition, benchmark, data, instr) at ``value``."""
    hits = [r for r in rows if (r["condition"], r["benchmark"], r["data"], r["instr"]) == key]
    assert hits, key
    for r in hits:
        r["repar_acc"] = f"{value:.4f}"


def spread_cells(report_dir: Path) -> list[tuple[tuple, float, float]]:
    """(key, mean, sd) of the published cells with three seeds and a non-zero spread."""
    out = []
    for key, seeds in reproduction.seed_accuracies(report_dir / "cells.tsv").items():
        values = list(seeds.values())
        if len(values) == 3 and statistics.stdev(values) > 0.01:
            out.append((key, statistics.fmean(values), statistics.stdev(values)))
    return out


def test_identical_reports_agree_everywhere(published):
    cells, tables = reproduction.compare_reports(published, published)
    verdicts = {r["within_spread"] for r in cells if r["theirs_seeds"] == "3"}
    assert verdicts == {"yes"} and all(r["diff_pp"] == "0.00" for r in cells)
    single = [r for r in cells if r["theirs_seeds"] == "1"]
    assert single and {r["within_spread"] for r in single} == {"n/a"}
    assert all("1 seed" in r["note"] for r in single)
    assert len({r["table"] for r in tables}) == 22 and {r["agree"] for r in tables} == {"yes"}


def test_a_perturbed_cell_falls_outside_the_spread(published, tmp_path):
    ours = tmp_path / "ours"
    shutil.copytree(published, ours)
    (far_key, far_mean, far_sd), (near_key, near_mean, near_sd) = spread_cells(published)[:2]
    rows = read_tsv(ours / "cells.tsv")
    set_cell(rows, far_key, far_mean + 2 * far_sd + 0.01)  # just past the published ±2 sd
    set_cell(rows, near_key, near_mean - 1.5 * near_sd)  # inside it, though not equal
    write_tsv(ours / "cells.tsv", rows)
    table = ours / "tables" / "t1-sib200.csv"
    text = table.read_text(encoding="utf-8").splitlines()
    fields = text[1].split(",")
    fields[-1] = f"{float(fields[-1]) + 2.0:.1f}"  # the baseline's ur column, 2 pp up
    table.write_text("\n".join([text[0], ",".join(fields), *text[2:]]) + "\n", encoding="utf-8")

    cells, tables = reproduction.compare_reports(ours, published)
    by_key = {tuple(r[k] for k in reproduction.CELL_KEY): r for r in cells}
    far, near = by_key[far_key], by_key[near_key]
    assert far["within_spread"] == "no" and "outside" in far["note"]
    assert float(far["diff_pp"]) == pytest.approx(100 * (2 * far_sd + 0.01), abs=0.02)
    assert near["within_spread"] == "yes" and float(near["diff_pp"]) < 0
    assert [r for r in cells if r["within_spread"] == "no"] == [far]
    wrong = [r for r in tables if r["agree"] == "no"]
    assert [(r["table"], r["row"], r["column"], r["diff_pp"]) for r in wrong] == [("t1-sib200", "Baseline", "ur", "+2.0")]
    summary = reproduction.summary_markdown(cells, tables, "ours", "theirs")
    assert "**1** outside" in summary and f"| {far_key[0]} | {far_key[1]} |" in summary
    assert "| t1-sib200 | 32 | 31 | 2.0 | 0 |" in summary


def test_cells_one_side_lacks_are_na_with_the_reason(published, tmp_path):
    ours = tmp_path / "ours"
    shutil.copytree(published, ours)
    rows = read_tsv(ours / "cells.tsv")
    write_tsv(ours / "cells.tsv", [r for r in rows if r["condition"] != "condition-3-zh-5k"])
    cells, _ = reproduction.compare_reports(ours, published)
    lacking = [r for r in cells if r["condition"] == "condition-3-zh-5k"]
    assert lacking and all((r["within_spread"], r["note"], r["ours_acc"]) == ("n/a", "not in our report", "") for r in lacking)


def test_the_stage_skips_without_a_published_report_and_writes_deterministic_bytes(published, tmp_path, repo_root, capsys):
    out = tmp_path / "out"
    assert stage.main(["--params", str(repo_root / "params.yaml"), "--out", str(out)]) == 0  # smoke: null
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "skipped" and "reproduction.published_report is null" in status["reason"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "status.json"]
    assert "skipped" in capsys.readouterr().out

    args = ["--ours", str(published), "--published", str(published), "--out", str(out)]
    assert stage.main(args) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["README.md", "cells.tsv", "status.json", "tables.tsv"]
    assert json.loads(first["status.json"])["cells"]["no"] == 0
    assert stage.main(args) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_a_bad_report_is_named(published, tmp_path, capsys):
    ours = tmp_path / "ours"
    shutil.copytree(published, ours)
    rows = read_tsv(ours / "cells.tsv")
    rows[4]["repar_acc"] = "abc"
    write_tsv(ours / "cells.tsv", rows)
    assert stage.main(["--ours", str(ours), "--published", str(published), "--out", str(tmp_path / "o")]) == 2
    assert f"{ours / 'cells.tsv'}: row 6: repar_acc 'abc'" in capsys.readouterr().err
    assert stage.main(["--ours", str(tmp_path / "nowhere"), "--published", str(published), "--out", str(tmp_path / "o")]) == 2
    assert "no such report folder" in capsys.readouterr().err


def test_strict_scoring_for_reports_without_refined_scores(published, tmp_path, capsys):
    """Phase 2's report leaves repar_acc empty: refined finds nothing (and says why), strict compares orig_acc."""
    ours = tmp_path / "ours"
    shutil.copytree(published, ours)
    rows = read_tsv(ours / "cells.tsv")
    for r in rows:
        r["repar_acc"] = ""
    write_tsv(ours / "cells.tsv", rows)
    args = ["--ours", str(ours), "--published", str(ours), "--out", str(tmp_path / "o")]
    assert stage.main(args + ["--scoring", "refined"]) == 2
    assert "no refined accuracy in any row (a Phase 2 report has strict scores only)" in capsys.readouterr().err
    assert stage.main(args + ["--scoring", "strict"]) == 0
    strict = read_tsv(tmp_path / "o" / "cells.tsv")
    expected = reproduction.seed_accuracies(published / "cells.tsv", "strict")
    first = strict[0]
    key = tuple(first[k] for k in reproduction.CELL_KEY)
    assert float(first["ours_acc"]) == pytest.approx(statistics.fmean(expected[key].values()), abs=1e-4)
    assert json.loads((tmp_path / "o" / "status.json").read_text())["scoring"] == "strict"
    assert "the strict extractor's" in (tmp_path / "o" / "README.md").read_text()
