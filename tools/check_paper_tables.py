"""check_paper_tables: a report's regenerated tables against the paper's, cell by cell.

    python -m tools.check_paper_tables reports/published          # after `dvc repro reports/published`
    python -m tools.check_paper_tables REPORT_DIR --facts F.tsv --tolerance 0.1 --out check.tsv

Reads ``REPORT_DIR/tables.tex`` (``stages.report``'s 22 tables) and the paper's cells
(``stages/lib/facts/paper_tables.tsv``, from the original's ``tables.tex``; stages/lib/paper_facts.py),
compares every cell that shows numbers, and prints ``N/M cells agree within ±0.1 pp`` and, below it,
each disagreeing cell (table, row, column, the paper's numbers, ours). ``--out`` writes the
disagreements as a TSV (header only when all agree). Exit 0 when all M agree, 1 otherwise, 2 when
the report or the facts cannot be read. On the published experiments at the paper's revision every
cell agrees (README "The published study").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from stages.lib.paper_facts import FACTS, TOLERANCE_PP, check, write_disagreements

SHOWN = 20  # disagreements printed; --out has them all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.check_paper_tables", description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path, help="a report folder holding tables.tex")
    parser.add_argument("--facts", type=Path, default=FACTS, help="the paper's cells (default: the shipped facts)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_PP, help="pp either side (default 0.1)")
    parser.add_argument("--out", type=Path, help="write every disagreeing cell here (TSV)")
    args = parser.parse_args(argv)
    try:
        comparison = check(args.report_dir, args.facts, args.tolerance)
    except (OSError, ValueError) as error:
        print(f"check_paper_tables: {error}", file=sys.stderr)
        return 2
    print(comparison.line(args.tolerance))
    for row in comparison.disagreements[:SHOWN]:
        print(f"  {row['table']} / {row['row']} / column {row['col']}: paper "
              f"{' '.join(f'{v:g}' for v in row['values'])}, ours {row['ours'] or '--'} ({row['why']})")
    if len(comparison.disagreements) > SHOWN:
        print(f"  ... and {len(comparison.disagreements) - SHOWN} more" + (f" (all in {args.out})" if args.out else ""))
    if args.out:
        write_disagreements(args.out, comparison)
    return 0 if comparison.agree == comparison.total else 1


if __name__ == "__main__":
    sys.exit(main())
