"""How close a reproduction is to the published run: two report folders compared, cell by cell and per table.

Both folders have the report stage's layout (``cells.tsv``, ``tables/*.csv``): ours is ``reports/``, theirs
a report of the published experiments (``python -m stages.report --published DIR``). Pure functions over
those files; no DVC, no network.

Per cell (condition × benchmark × data language × instruction language) the unit is the report's:
the refined accuracy (``repar_acc``; strict, ``orig_acc``, for Phase 2, which has no refined scores)
averaged over templates within a seed, then over seeds. Ours lies *within the
published spread* when ``|ours − theirs| ≤ 2 · sd`` of the published per-seed values (ddof = 1). That rule
needs the published run's three seeds: a single-seed (or two-seed) published condition, or a cell one side
lacks, gets ``n/a`` and the reason. Values are compared at the 4 decimals ``cells.tsv`` prints, so a
spread of 0 (every seed alike) admits exactly the published value.

Per table (the 22 ``tables/*.csv``) every numeric cell is put beside its published twin; the summary says
how many agree within ±0.1 pp (the tables print one decimal) and the largest difference.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from stages.lib.errors import StageError

SPREAD_SDS = 2.0
SPREAD_SEEDS = 3  # the published 5k conditions' seeds; the rule is stated for them
TABLE_TOLERANCE_PP = 0.1
EPS = 5e-5  # half a unit of cells.tsv's fourth decimal
SCORING_COLUMNS = {"refined": "repar_acc", "strict": "orig_acc"}  # cells.tsv's columns
CELL_KEY = ("condition", "benchmark", "data", "instr")
CELL_COLUMNS = (*CELL_KEY, "ours_seeds", "ours_acc", "theirs_seeds", "theirs_acc", "theirs_sd", "diff_pp",
                "spread_pp", "within_spread", "note")
TABLE_COLUMNS = ("table", "row", "column", "ours", "theirs", "diff_pp", "agree")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
SKIPPED_HEADERS = {"n_s", "n cells"}  # counts, not accuracies; not in the label either (seeds may differ)


class ReproductionError(StageError, ValueError):
    """A report folder that cannot be compared; the message names the file and row."""


@dataclass(frozen=True)
class CellComparison:
    key: tuple[str, str, str, str]
    ours: list[float]
    theirs: list[float]

    @property
    def ours_acc(self) -> float | None:
        return statistics.fmean(self.ours) if self.ours else None

    @property
    def theirs_acc(self) -> float | None:
        return statistics.fmean(self.theirs) if self.theirs else None

    @property
    def theirs_sd(self) -> float | None:
        return statistics.stdev(self.theirs) if len(self.theirs) >= 2 else None

    def verdict(self) -> tuple[str, str]:
        """("yes" | "no" | "n/a", why): whether ours lies within the published ± 2 sd."""
        if not self.ours:
            return "n/a", "not in our report"
        if not self.theirs:
            return "n/a", "not in the published report"
        if len(self.theirs) != SPREAD_SEEDS:
            return "n/a", f"published has {len(self.theirs)} seed(s); the ±2 sd rule needs {SPREAD_SEEDS}"
        inside = abs(self.ours_acc - self.theirs_acc) <= SPREAD_SDS * self.theirs_sd + EPS
        return ("yes", "") if inside else ("no", f"outside ±{SPREAD_SDS:g} sd of the published seeds")


def seed_accuracies(path: Path, scoring: str = "refined") -> dict[tuple, dict[str, float]]:
    """cells.tsv -> {(condition, benchmark, data, instr): {seed: accuracy averaged over templates}}.

    A row without a value of that scoring (Phase 2 has no refined scores) is not a cell of it."""
    if not path.is_file():
        raise ReproductionError(f"{path}: no cells.tsv (is this a report folder?)")
    column = SCORING_COLUMNS[scoring]
    per_template: dict[tuple, dict[str, list[float]]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {*CELL_KEY, "seed", column} - set(reader.fieldnames or ())
        if missing:
            raise ReproductionError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if not row[column].strip():
                continue
            try:
                value = float(row[column])
            except ValueError as error:
                raise ReproductionError(f"{path}: row {line}: {column} {row[column]!r} is not a number") from error
            key = tuple(row[k] for k in CELL_KEY)
            per_template.setdefault(key, {}).setdefault(row["seed"], []).append(value)
    if not per_template:
        raise ReproductionError(f"{path}: no {scoring} accuracy in any row (a Phase 2 report has strict scores only)")
    return {key: {seed: statistics.fmean(v) for seed, v in seeds.items()} for key, seeds in per_template.items()}


def compare_cells(ours_dir: Path, theirs_dir: Path, scoring: str = "refined") -> list[CellComparison]:
    ours = seed_accuracies(ours_dir / "cells.tsv", scoring)
    theirs = seed_accuracies(theirs_dir / "cells.tsv", scoring)
    order = list(theirs) + [key for key in ours if key not in theirs]  # the published order first
    return [CellComparison(key, list(ours.get(key, {}).values()), list(theirs.get(key, {}).values())) for key in order]


def _fmt(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"


def cell_rows(comparisons: list[CellComparison]) -> list[dict]:
    rows = []
    for c in comparisons:
        verdict, note = c.verdict()
        both = c.ours_acc is not None and c.theirs_acc is not None
        rows.append({
            **dict(zip(CELL_KEY, c.key)),
            "ours_seeds": str(len(c.ours)), "ours_acc": _fmt(c.ours_acc),
            "theirs_seeds": str(len(c.theirs)), "theirs_acc": _fmt(c.theirs_acc), "theirs_sd": _fmt(c.theirs_sd),
            "diff_pp": _fmt(c.ours_acc - c.theirs_acc, 100, 2) if both else "",
            "spread_pp": _fmt(SPREAD_SDS * c.theirs_sd, 100, 2) if c.theirs_sd is not None else "",
            "within_spread": verdict, "note": note,
        })
    return rows


def read_table(path: Path) -> dict[tuple[str, str], float]:
    """A paper table's CSV -> {(row label, column): number}; the label joins the non-numeric leading columns
    (``Condition``; ``Language | Benchmark``), skipping the seed counts."""
    with path.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    if not records:
        raise ReproductionError(f"{path}: empty table (no header)")
    header, body = records[0], records[1:]
    labels = []
    for i, name in enumerate(header):
        if name in SKIPPED_HEADERS or all(not NUMBER.match(r[i].strip()) for r in body if i < len(r) and r[i].strip()):
            labels.append(i)
        else:
            break
    cells = {}
    for row in body:
        label = " | ".join(row[i] for i in labels if i < len(row) and header[i] not in SKIPPED_HEADERS)
        for i, name in enumerate(header):
            if i in labels or i >= len(row):
                continue
            found = NUMBER.match(row[i].strip())
            if found:  # "+1.2 ± 0.3*": the first number is the cell's value
                cells[(label, name)] = float(found.group())
    return cells


def compare_tables(ours_dir: Path, theirs_dir: Path) -> list[dict]:
    rows = []
    names = sorted({p.name for p in (theirs_dir / "tables").glob("*.csv")} | {p.name for p in (ours_dir / "tables").glob("*.csv")})
    for name in names:
        ours = read_table(ours_dir / "tables" / name) if (ours_dir / "tables" / name).is_file() else {}
        theirs = read_table(theirs_dir / "tables" / name) if (theirs_dir / "tables" / name).is_file() else {}
        for key in list(theirs) + [k for k in ours if k not in theirs]:
            a, b = ours.get(key), theirs.get(key)
            diff = None if a is None or b is None else a - b
            rows.append({
                "table": name.removesuffix(".csv"), "row": key[0], "column": key[1],
                "ours": "" if a is None else f"{a:.1f}", "theirs": "" if b is None else f"{b:.1f}",
                "diff_pp": "" if diff is None else f"{diff:+.1f}",
                "agree": "n/a" if diff is None else ("yes" if abs(diff) <= TABLE_TOLERANCE_PP + 1e-9 else "no"),
            })
    return rows


def table_summary(rows: list[dict]) -> list[dict]:
    """Per table: cells compared, how many agree within ±0.1 pp, the largest |difference|, one-sided cells."""
    out: dict[str, dict] = {}
    for row in rows:
        s = out.setdefault(row["table"], {"table": row["table"], "compared": 0, "agree": 0, "max_abs_diff_pp": 0.0, "one_sided": 0})
        if row["agree"] == "n/a":
            s["one_sided"] += 1
            continue
        s["compared"] += 1
        s["agree"] += row["agree"] == "yes"
        s["max_abs_diff_pp"] = max(s["max_abs_diff_pp"], abs(float(row["diff_pp"])))
    return list(out.values())


def write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)] + ["\t".join(str(r[c]) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_markdown(cells: list[dict], tables: list[dict], ours_label: str, theirs_label: str, worst: int = 10,
                     scoring: str = "refined") -> str:
    verdicts = {v: sum(r["within_spread"] == v for r in cells) for v in ("yes", "no", "n/a")}
    reasons: dict[str, int] = {}
    for r in cells:
        if r["within_spread"] == "n/a":
            reasons[r["note"]] = reasons.get(r["note"], 0) + 1
    per_table = table_summary(tables)
    agree = sum(s["agree"] for s in per_table)
    compared = sum(s["compared"] for s in per_table)
    lines = [
        "# How close is this reproduction to the published run",
        "",
        f"Ours: `{ours_label}`; published: `{theirs_label}`. Generated by `python -m stages.reproduction`; do not edit.",
        f"Accuracy is the {scoring} extractor's, averaged over templates within a seed, then over seeds.",
        "",
        f"- Cells within the published ±{SPREAD_SDS:g} sd ({SPREAD_SEEDS} seeds): **{verdicts['yes']}** within, "
        f"**{verdicts['no']}** outside, {verdicts['n/a']} n/a",
        *[f"  - n/a: {count} × {reason}" for reason, count in sorted(reasons.items())],
        f"- Paper tables: **{agree}/{compared}** cells agree within ±{TABLE_TOLERANCE_PP:g} pp",
        "",
        "| table | compared | agree (±0.1 pp) | max \\|diff\\| pp | one-sided |",
        "|---|---|---|---|---|",
        *[f"| {s['table']} | {s['compared']} | {s['agree']} | {s['max_abs_diff_pp']:.1f} | {s['one_sided']} |" for s in per_table],
        "",
    ]
    outside = sorted((r for r in cells if r["within_spread"] == "no"), key=lambda r: -abs(float(r["diff_pp"])))[:worst]
    if outside:
        lines += [f"Largest differences outside the spread (of {verdicts['no']}; all in `cells.tsv`):", "",
                  "| condition | benchmark | data | instr | ours | published | diff pp | ±2 sd pp |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['condition']} | {r['benchmark']} | {r['data']} | {r['instr']} | {r['ours_acc']} | {r['theirs_acc']} "
                  f"| {r['diff_pp']} | {r['spread_pp']} |" for r in outside]
        lines.append("")
    return "\n".join(lines)


def compare_reports(ours_dir: Path, theirs_dir: Path, scoring: str = "refined") -> tuple[list[dict], list[dict]]:
    """(cell rows, table rows) of ours against theirs."""
    for folder in (ours_dir, theirs_dir):
        if not folder.is_dir():
            raise ReproductionError(f"{folder}: no such report folder")
    return cell_rows(compare_cells(ours_dir, theirs_dir, scoring)), compare_tables(ours_dir, theirs_dir)
