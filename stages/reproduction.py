"""reproduction: how close our report is to the published run, cell by cell and per table.

    python -m stages.reproduction                                   # dvc.yaml: reproduction (params decide)
    python -m stages.reproduction --published reports/published     # any published-format report folder

Reads ``reports/cells.tsv`` and ``reports/tables/*.csv`` (ours) and the same files of the report folder
``reproduction.published_report`` names (theirs: ``python -m stages.report --published DIR`` of the
published experiments). Writes ``reports/reproduction/``:

- ``cells.tsv``: per condition × benchmark × data × instr, our accuracy (``reproduction.scoring``: refined,
  or strict for Phase 2, which has no refined scores) and seeds, the published ones, the difference in pp, and whether ours lies within the published ±2 sd (three seeds; ``n/a``
  with the reason otherwise) (stages/lib/reproduction.py);
- ``tables.tsv``: every numeric cell of the 22 paper tables, ours beside theirs;
- ``README.md``: the summary (counts within the spread, per table agreement within ±0.1 pp);
- ``status.json``: ``compared`` with both folders, or ``skipped`` and why when ``published_report`` is
  null (the smoke default: the published run is not imported offline), so the stage never fails there.

Deterministic bytes: no time, no host, paths as given (relative in dvc.yaml).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from stages.lib import reproduction
from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.provenance import write_json


def skip(out: Path, reason: str) -> None:
    write_json(out / "status.json", {"status": "skipped", "reason": reason})
    (out / "README.md").write_text(f"# How close is this reproduction to the published run\n\nSkipped: {reason}\n",
                                   encoding="utf-8")


def run(ours: Path, theirs: Path, out: Path, scoring: str = "refined") -> dict:
    cells, tables = reproduction.compare_reports(ours, theirs, scoring)
    reproduction.write_tsv(out / "cells.tsv", reproduction.CELL_COLUMNS, cells)
    reproduction.write_tsv(out / "tables.tsv", reproduction.TABLE_COLUMNS, tables)
    summary = reproduction.summary_markdown(cells, tables, ours.as_posix(), theirs.as_posix(), scoring=scoring)
    (out / "README.md").write_text(summary, encoding="utf-8")
    status = {
        "status": "compared", "ours": ours.as_posix(), "published": theirs.as_posix(), "scoring": scoring,
        "cells": {v: sum(r["within_spread"] == v for r in cells) for v in ("yes", "no", "n/a")},
        "table_cells_agree": sum(r["agree"] == "yes" for r in tables),
        "table_cells_compared": sum(r["agree"] != "n/a" for r in tables),
    }
    write_json(out / "status.json", status)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--ours", type=Path, default=Path("reports"), help="our report folder")
    parser.add_argument("--published", type=Path, default=None, help="a published report folder (default: params)")
    parser.add_argument("--out", type=Path, default=Path("reports/reproduction"))
    parser.add_argument("--scoring", choices=sorted(reproduction.SCORING_COLUMNS), default=None,
                        help="the accuracy compared (default: params reproduction.scoring)")
    args = parser.parse_args(argv)
    try:
        published, scoring = args.published, args.scoring
        if published is None or scoring is None:
            settings = load_params(args.params).reproduction
            published = published or (Path(settings.published_report) if settings.published_report else None)
            scoring = scoring or settings.scoring
        if args.out.exists():
            shutil.rmtree(args.out)  # a stale tables.tsv must not outlive a skip
        args.out.mkdir(parents=True)
        if published is None:
            reason = (f"{args.params}: reproduction.published_report is null: no published report to compare with "
                      "(import the published run, report it, and set the key to its folder, e.g. reports/published)")
            skip(args.out, reason)
            print(f"reproduction: skipped: {reason}")
            return 0
        status = run(args.ours, published, args.out, scoring)
    except (reproduction.ReproductionError, ParamsError, OSError) as error:
        print(f"reproduction: {error}", file=sys.stderr)
        return 2
    cells = status["cells"]
    print(f"reproduction: {cells['yes']} cells within the published ±2 sd, {cells['no']} outside, {cells['n/a']} n/a; "
          f"tables {status['table_cells_agree']}/{status['table_cells_compared']} cells agree within ±0.1 pp -> {args.out}")
    return 0


if __name__ == "__main__":
    exit_stage(main)
