"""report_published: the paper's report from the published raw outputs, and the check against the paper.

    python -m stages.report_published                       # dvc.yaml: report_published
    dvc repro reports/published                             # import, reparse, report, check (needs network)

Reads the imported snapshot (``data/published/experiments``, stages/import_published.py) and its
reparsed summaries (``data/published/reparsed``, ``stages.reparse --published``), joins them into one
tree in the published layout (links in a temporary folder: the two are two stages' outputs), and
reports it as ``stages.report --published`` does (stages/lib/phase3_report.py), with the original's
statistics (``--original-statistics``, so that ``significance.tsv`` carries the published p values),
into ``reports/published/``: the 22
tables (``tables.tex``, ``tables/``), ``significance.tsv``, ``cross_seed_variance.tsv``, ``analyses/``
and ``metrics.json`` with the keys of the project's own ``reports/metrics.json`` (so
``dvc metrics show`` lines the two up, and ``dvc metrics diff`` compares each across commits). No
plots (binary files in git; ``stages.report --published`` draws them on demand). Then it compares
the tables with the paper's cells (stages/lib/paper_facts.py): ``paper_tables_check.tsv`` lists
every disagreeing cell and the agreement line is printed and kept in ``status.json``.

When the import was skipped (``published.enabled: false``, the smoke default) it writes only
``status.json`` saying why and an empty ``metrics.json`` (the metric file DVC lists), without reading anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from stages.lib import paper_facts, phase3_report, published
from stages.lib.errors import exit_stage
from stages.lib.provenance import write_json
from stages.lib.report_outputs import Options, publish
from stages.lib.results_index import discover_published

STAGE = "report_published"
CHECK_FILE = "paper_tables_check.tsv"


def joined_tree(experiments: Path, reparsed: Path, into: Path) -> Path:
    """``into``: links to every Phase 3 file of both folders, in the published layout."""
    for root in (experiments, reparsed):
        for path in sorted((root / "phase3" / "conditions").glob("*/*/*.json")):
            target = into / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path.resolve(), target)
    return into


def report_published(experiments: Path, reparsed: Path, out: Path, jobs: int) -> int:
    reason = published.skipped_reason(experiments) or published.skipped_reason(reparsed)
    if reason is not None:
        published.write_skipped(out, STAGE, f"the import was skipped: {reason}",
                                "see data/published/experiments/status.json")
        write_json(out / "metrics.json", {})
        print(f"{STAGE}: skipped, the import was skipped ({reason}); {out / published.STATUS} says so")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".published-tree-", dir=out.parent) as work:
        tree = joined_tree(experiments, reparsed, Path(work))
        options = Options(out=out, jobs=jobs, no_plots=True, original_statistics=True)
        code = publish(out, options.no_plots, lambda staging: phase3_report.write_report(
            staging, discover_published(tree), {"mode": "published"}, options))
    if code != 0:
        return code
    comparison = paper_facts.check(out)
    paper_facts.write_disagreements(out / CHECK_FILE, comparison)
    line = comparison.line()
    write_json(out / published.STATUS, {"stage": STAGE, "status": "reported", "snapshot": published.status(experiments),
                                        "paper_tables": line})
    print(f"{STAGE}: {line} (the paper's tables; {out / CHECK_FILE} lists the others)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.report_published", description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=Path, default=Path("data/published/experiments"))
    parser.add_argument("--reparsed", type=Path, default=Path("data/published/reparsed"))
    parser.add_argument("--out", type=Path, default=Path("reports/published"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if not (args.experiments / published.STATUS).is_file():
        print(f"{STAGE}: {args.experiments}: no status.json; run `dvc repro import_published` first", file=sys.stderr)
        return 2
    return report_published(args.experiments, args.reparsed, args.out, args.jobs)


if __name__ == "__main__":
    exit_stage(main)
