"""crosscheck: the project's reparse and report against the original's own scripts, on the same inputs.

    python -m tools.crosscheck --original ../shared/reference/original-analysis/scripts
    python -m tools.crosscheck --original path/to/expedition-tiny-aya --keep /tmp/xc   # keep the trees and outputs

Writes a seeded synthetic tree in the published layout with planted effects
(``stages/lib/synthetic_published.py``), then on copies of it runs

- the original: ``reparse_results.py --write-reparsed-summary``, ``build_comparison.py``,
  ``build_vs_baseline.py``, then, with ``vs_baseline_cells.tsv`` placed where they download it,
  ``build_phase3_tables.py``, ``build_significance.py``, and the analyses
  ``build_xnli_label_bias.py``, ``build_sib200_category_breakdown.py``, ``build_correct_via_constant.py``,
  ``build_framework_comparison.py`` (each untouched, read from PATH, the Hub served from the local tree
  by ``stages/lib/offline_hub.py``);
- the project: ``python -m stages.reparse`` and ``python -m stages.report --published`` with the
  original's statistics (``--original-statistics``).

It prints, per output, how many numbers agree, how many differ on purpose (:data:`DOCUMENTED`) and
every other disagreement; exit 0 when there are none of those. PATH is the folder of the scripts,
or a checkout of ``expedition-tiny-aya/`` (scripts under ``evaluation/scripts`` and ``analysis/scripts``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from stages.lib import analyses, synthetic_published
from stages.lib.paper_facts import tex_tables

SCRIPTS = ("reparse_results.py", "build_comparison.py", "build_vs_baseline.py", "build_phase3_tables.py",
           "build_significance.py", "build_xnli_label_bias.py", "build_sib200_category_breakdown.py",
           "build_correct_via_constant.py", "build_framework_comparison.py")
TABLES_REMOTE = "phase3/analysis/refined-tables/vs_baseline_cells.tsv"
ROOT = Path(__file__).resolve().parents[1]

# Where the project differs from the original on purpose; each is a reason printed beside the count.
DOCUMENTED = {
    "cells-n": "cells.tsv n: the original reads a _count its strict summaries lack and writes None; "
               "the project fills the row count",
    "bold-rounded": "tables: bold/italic thresholds compare the rounded value shown, not the unrounded mean",
}


@dataclass
class Outcome:
    """One output's comparison: numbers that agree, that differ on purpose, and every other disagreement."""

    name: str
    agree: int = 0
    documented: dict[str, int] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)

    def same(self, ok: bool, where: str, documented: str | None = None) -> None:
        if ok:
            self.agree += 1
        elif documented:
            self.documented[documented] = self.documented.get(documented, 0) + 1
        else:
            self.disagreements.append(where)

    @property
    def total(self) -> int:
        return self.agree + sum(self.documented.values()) + len(self.disagreements)


# --- locating and running the original ------------------------------------------------------------------


def locate_scripts(original: Path) -> dict[str, Path]:
    """Each script the cross-check runs, in PATH itself or the checkout's evaluation/analysis script folders."""
    places = [original, original / "evaluation" / "scripts", original / "analysis" / "scripts"]
    found, lacking = {}, []
    for name in SCRIPTS:
        hits = [p / name for p in places if (p / name).is_file()]
        if hits:
            found[name] = hits[0]
        else:
            lacking.append(name)
    if lacking:
        raise SystemExit(f"crosscheck: {original} lacks {', '.join(lacking)} (looked in {', '.join(map(str, places))})")
    return found


def _python(args: Sequence[str], *, env: dict | None = None, cwd: Path | None = None) -> None:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    done = subprocess.run([sys.executable, *args], env=full_env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"crosscheck: {' '.join(map(str, args[:6]))} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _original(script: Path, tree: Path, *args: str, sets: Sequence[str] = (), env: dict | None = None, cwd: Path) -> None:
    _python(["-m", "stages.lib.offline_hub", "--tree", str(tree), "--script", str(script),
             *(f"--set={s}" for s in sets), "--", *args], env=env, cwd=cwd)


def results_files(tree: Path) -> list[str]:
    return sorted(str(p) for p in (tree / "phase3" / "conditions").glob("*/*/*_results_template*.json"))


def run_original(scripts: dict[str, Path], tree: Path, out: Path) -> None:
    """The original's pipeline on ``tree`` (reparsed summaries are written into it), outputs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _python([str(scripts["reparse_results.py"]), *results_files(tree), "--write-reparsed-summary"], cwd=out)
    env = {"PHASE3_SNAPSHOT_ROOT": str(tree / "phase3" / "conditions"), "PHASE3_OUT_DIR": str(out),
           "PHASE3_ANALYSIS_TABLES_DIR": str(out)}
    for name in ("build_comparison.py", "build_vs_baseline.py", "build_framework_comparison.py"):
        _python([str(scripts[name])], env=env, cwd=out)
    (tree / TABLES_REMOTE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "vs_baseline_cells.tsv", tree / TABLES_REMOTE)
    _original(scripts["build_phase3_tables.py"], tree, sets=[f"OUT_FILE={out / 'tables.tex'}"], cwd=out)
    _original(scripts["build_significance.py"], tree, env=env, cwd=out)
    for name, output in (("build_xnli_label_bias.py", "xnli-label-distributions.tsv"),
                         ("build_sib200_category_breakdown.py", "sib200-category-accuracy.tsv"),
                         ("build_correct_via_constant.py", "correct-via-constant-rates.tsv")):
        _original(scripts[name], tree, "--output", str(out / output), cwd=out)


STATISTICS_FLAG = "--original-statistics"  # the report's switch to every statistic as the original computed it


def run_project(tree: Path, out: Path) -> str:
    """Reparse ``tree`` in place and report it into ``out``; returns the statistics flag used."""
    _python(["-m", "stages.reparse", "--no-repo-head", "--jobs", "1", *results_files(tree)])
    flag = STATISTICS_FLAG
    _python(["-m", "stages.report", "--published", str(tree), "--out", str(out), "--jobs", "1", "--no-plots",
             "--bootstrap-resamples", "20", flag])
    return flag


# --- comparing ---------------------------------------------------------------------------------------------


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else 0


def same_value(a: str, b: str) -> bool:
    """Equal as printed: numbers at the coarser of the two precisions (0.5 vs 0.5000), text exactly; empty,
    None and nan all mean 'no value'."""
    empty = ("", "None", "nan", "NaN")
    if a in empty or b in empty:
        return a in empty and b in empty
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= 0.5 * 10 ** -min(_decimals(a), _decimals(b)) + 1e-12


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def compare_tsv(name: str, original: Path, project: Path, keys: Sequence[str], *,
                skip: Sequence[str] = (), documented: Callable[[str, dict, dict], str | None] = lambda c, o, p: None) -> Outcome:
    """Every field of the original's file against the project's row with the same key (and the other way round)."""
    outcome = Outcome(name)
    if not project.is_file():
        outcome.disagreements.append(f"{project.name}: the project wrote no such file")
        return outcome
    left, right = read_tsv(original), read_tsv(project)
    lacking = [c for c in left.columns if c not in right.columns and c not in skip]
    for column in lacking:
        outcome.disagreements.append(f"column {column!r} is not in the project's file")
    mine = {tuple(r[k] for k in keys): r for r in right.to_dict("records")}
    seen = set()
    for row in left.to_dict("records"):
        key = tuple(row[k] for k in keys)
        other = mine.get(key)
        if other is None:
            outcome.disagreements.append(f"{'/'.join(key)}: row absent from the project's file")
            continue
        seen.add(key)
        for column in left.columns:
            if column in keys or column in skip or column in lacking:
                continue
            ok = same_value(row[column], other[column])
            outcome.same(ok, f"{'/'.join(key)} {column}: original {row[column]!r}, project {other[column]!r}",
                         None if ok else documented(column, row, other))
    for key in mine.keys() - seen:
        outcome.disagreements.append(f"{'/'.join(key)}: row only in the project's file")
    return outcome


THRESHOLD_PP = (8.0, 4.0, 3.0, 5.0, 2.0)  # T4 (SIB-200, XNLI/Belebele, X-CSQA), cond2-vs-cond5 gap, transfer


def compare_tables(original: Path, project: Path) -> list[Outcome]:
    """Each of the original's tables, number by number and mark by mark, against the project's of that label."""
    theirs, ours = tex_tables(original.read_text(encoding="utf-8")), tex_tables(project.read_text(encoding="utf-8"))
    outcomes = []
    for label, table in theirs.items():
        outcome = Outcome(f"tables.tex {label}")
        outcomes.append(outcome)
        mine = ours.get(label)
        if mine is None:
            outcome.disagreements.append(f"{label}: no such table in the project's tables.tex")
            continue
        for name, cells in table["rows"].items():
            other = mine["rows"].get(name)
            if other is None:
                if any(numbers for numbers, _ in cells):
                    outcome.disagreements.append(f"{label} {' / '.join(name)}: row absent from the project's table")
                continue
            if mine["ns"] and not table["ns"]:
                other = other[1:]  # the project's n_s column, which this table of the original lacks
            for i, ((numbers, emphasis), (mine_numbers, mine_emphasis)) in enumerate(zip(cells, other)):
                where = f"{label} {' / '.join(name)} column {i + 1}"
                for x, y in zip(numbers, mine_numbers):
                    outcome.same(x == y, f"{where}: original {x}, project {y}")
                if len(numbers) != len(mine_numbers):
                    outcome.disagreements.append(f"{where}: original {numbers}, project {mine_numbers}")
                if emphasis != mine_emphasis:
                    at_threshold = bool(numbers) and abs(numbers[0]) in THRESHOLD_PP
                    outcome.same(False, f"{where}: original {emphasis or 'plain'}, project {mine_emphasis or 'plain'}",
                                 "bold-rounded" if at_threshold else None)
        for name in mine["rows"].keys() - table["rows"].keys():
            outcome.disagreements.append(f"{label} {' / '.join(name)}: row only in the project's table")
    return outcomes


def compare_reparsed(original: Path, project: Path) -> Outcome:
    """Every number of every _summary_reparsed_ file (acc, count, correct per cell; parse-failure rates)."""
    outcome = Outcome("reparsed summaries")
    for theirs in sorted((original / "phase3" / "conditions").glob("*/*/*_summary_reparsed_*.json")):
        mine = project / theirs.relative_to(original)
        if not mine.is_file():
            outcome.disagreements.append(f"{mine.name}: not written by the project's reparse")
            continue
        a, b = json.loads(theirs.read_text(encoding="utf-8")), json.loads(mine.read_text(encoding="utf-8"))
        for block in ("summary", "parse_failure_rates"):
            for key, value in a[block].items():
                other = b[block].get(key)
                outcome.same(other is not None and abs(value - other) <= 1e-12,
                             f"{theirs.name} {block} {key}: original {value}, project {other}")
    return outcome


def _cells_n(column: str, theirs: dict, mine: dict) -> str | None:
    return "cells-n" if column == "n" and theirs[column] == "None" and mine[column] != "" else None


def compare_all(theirs: Path, mine: Path, original_tree: Path, project_tree: Path) -> list[Outcome]:
    run_keys = ["condition", "seed", "template", "benchmark", "data", "instr"]
    outcomes = [compare_reparsed(original_tree, project_tree),
                compare_tsv("cells.tsv", theirs / "cells.tsv", mine / "cells.tsv", run_keys, documented=_cells_n),
                compare_tsv("vs_baseline_cells.tsv", theirs / "vs_baseline_cells.tsv", mine / "vs_baseline_cells.tsv", run_keys),
                compare_tsv("conclusion_flips.tsv", theirs / "conclusion_flips.tsv", mine / "conclusion_flips.tsv", run_keys),
                compare_tsv("significance.tsv", theirs / "significance.tsv", mine / "significance.tsv",
                            ["condition", "benchmark", "data", "instr"])]
    outcomes += compare_tables(theirs / "tables.tex", mine / "tables.tex")
    keys = {"xnli-label-distributions.tsv": ["condition", "seed", "template", "data_lang", "instr_lang", "gold"],
            "sib200-category-accuracy.tsv": ["condition", "seed", "template", "data_lang", "instr_lang", "gold_category"],
            "correct-via-constant-rates.tsv": ["condition", "seed", "template", "data_lang", "instr_lang"],
            "framework_template_comparison.tsv": ["condition", "seed", "benchmark", "data", "instr"],
            "framework_same_language_comparison.tsv": ["target_lang", "template", "benchmark", "data", "instr", "condition"],
            "framework_data_volume_comparison.tsv": ["target_lang", "family", "template", "benchmark", "data", "instr"]}
    for name in analyses.OUTPUTS:
        outcome = compare_tsv(name, theirs / name, mine / "analyses" / name, keys[name])
        if outcome.total and (theirs / name).read_bytes() != (mine / "analyses" / name).read_bytes():
            outcome.disagreements.append(f"{name}: same numbers, other bytes (order or format)")
        outcomes.append(outcome)
    return outcomes


def summary_lines(outcomes: Sequence[Outcome], flag: str) -> list[str]:
    width = max(len(o.name) for o in outcomes)
    lines = [f"{'output':<{width}}  numbers  agree  documented  disagree"]
    for o in outcomes:
        lines.append(f"{o.name:<{width}}  {o.total:>7}  {o.agree:>5}  {sum(o.documented.values()):>10}  {len(o.disagreements):>8}")
        lines += [f"    {d}" for d in o.disagreements[:20]]
        if len(o.disagreements) > 20:
            lines.append(f"    ... and {len(o.disagreements) - 20} more")
    used = sorted({k for o in outcomes for k in o.documented})
    total = sum(o.total for o in outcomes)
    bad = sum(len(o.disagreements) for o in outcomes)
    documented = sum(sum(o.documented.values()) for o in outcomes)
    lines.append(f"project statistics: report {flag}")
    lines.append("documented differences:" if used else "documented differences: none met on this tree")
    lines += [f"  {k} ({sum(o.documented.get(k, 0) for o in outcomes)}): {DOCUMENTED[k]}" for k in used]
    verdict = "full agreement apart from the documented differences" if bad == 0 else f"{bad} disagreement(s)"
    lines.append(f"{total} numbers: {total - bad - documented} agree, {documented} documented differences; {verdict}")
    return lines


def crosscheck(original: Path, work: Path, seed: int = 0) -> tuple[list[Outcome], str]:
    scripts = locate_scripts(original)
    raw = synthetic_published.write_tree(work / "raw", seed)
    original_tree, project_tree = work / "original-tree", work / "project-tree"
    for copy in (original_tree, project_tree):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(raw, copy)
    run_original(scripts, original_tree, work / "original-out")
    flag = run_project(project_tree, work / "project-out")
    return compare_all(work / "original-out", work / "project-out", original_tree, project_tree), flag


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, required=True, help="the original's scripts (or its expedition-tiny-aya/ checkout)")
    parser.add_argument("--keep", type=Path, help="work here and keep the trees and outputs (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic tree")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crosscheck-") as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        outcomes, flag = crosscheck(args.original.resolve(), work.resolve(), args.seed)
        for line in summary_lines(outcomes, flag):
            print(line)
    return 1 if any(o.disagreements for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
