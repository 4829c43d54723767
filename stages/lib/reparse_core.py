"""The pure core of reparse: one parsed ``_results_`` file in, its ``_summary_reparsed_`` body out.

Used by the ``reparse`` stage (``stages/reparse.py``, which reads and writes the files) and by the
report (``stages/lib/results_index.py``, which reparses in memory where a snapshot has no
``_summary_reparsed_``); a lib module, so that no lib module imports a stage.

:func:`load_results` reads a file with a typed ``msgspec`` decoder that keeps only what reparse
reads: the ``summary`` and ``parse_failure_rates`` objects and, per row, ``raw_output`` and ``gold``;
the rows' other fields (prompts, passages, ``pred``) are checked as JSON but never built as Python
objects. That is most of the time saved over ``json.load`` of the whole file
(``benchmarks/reparse_speed.py`` measures it). Any file the typed decoder refuses (malformed JSON,
a row without ``raw_output``, a ``raw_output`` that is not a string, ...) is read again with ``json``
and goes through the same checks as before, so the error names the file, cell and row as it did,
and a file it accepts gives the same numbers: both decoders round floats correctly and keep the
last of repeated keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import msgspec

from stages.lib import extractors, results
from stages.lib.errors import StageError

DEFAULT_EXTRACTOR = "refined"
DELTA_EPSILON = 1e-9  # a cell is "changed" when |Δacc| or |Δfail| exceeds this
SUMMARY_KEYS = ("summary", "parse_failure_rates")

CELL_KEY = results.CELL_KEY


class ReparseError(StageError, ValueError):
    """Bad input; the message says where (file, cell, row)."""


@dataclass(frozen=True)
class Cell:
    key: str
    template: str
    benchmark: str
    data_lang: str
    instr_lang: str


@dataclass(frozen=True)
class CellScore:
    n: int
    correct: int
    failures: int

    @property
    def acc(self) -> float:
        return self.correct / self.n

    @property
    def fail(self) -> float:
        return self.failures / self.n


def parse_cell_key(key: str) -> Cell:
    match = CELL_KEY.match(key)
    if not match:
        raise ReparseError(f"unknown cell key {key!r} (expected template<N>_<benchmark>_data=<lang>_instr=<lang>)")
    return Cell(key, *match.groups())


class Row(msgspec.Struct, gc=False):  # no cycles in decoded JSON: untracked rows decode faster
    """What reparse reads of a row; the typed decoder skips every other field."""

    raw_output: str
    gold: Any


# the top level: cells (lists of rows) and the summary objects; anything else fails and is re-read with json
_DECODER = msgspec.json.Decoder(dict[str, Union[list[Row], dict[str, Any]]])


def score_cell(cell: Cell, rows: Any, extractor: extractors.Extractor, memo: dict | None = None) -> CellScore:
    """Counts of one cell; a None prediction is a failure and wrong, as in the original.

    ``rows`` are dicts (``json``) or :class:`Row` values (:func:`load_results`, already checked).
    ``memo`` caches the extractor's answers; pass one per extractor to share it across cells.
    """
    if not isinstance(rows, list):
        raise ReparseError(f"cell {cell.key!r}: expected a list of rows, got {type(rows).__name__}")
    if not rows:
        raise ReparseError(f"cell {cell.key!r}: no rows")
    memo = {} if memo is None else memo  # raw outputs repeat a lot; the extractors are pure
    if isinstance(rows[0], Row):
        return _score_rows(rows, extractor, memo)
    correct = failures = 0
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ReparseError(f"cell {cell.key!r} row {index}: expected an object, got {type(row).__name__}")
        for field in ("raw_output", "gold"):
            if field not in row:
                raise ReparseError(f"cell {cell.key!r} row {index}: missing {field!r}")
        raw = row["raw_output"]
        if not isinstance(raw, str):
            raise ReparseError(f"cell {cell.key!r} row {index}: raw_output is {type(raw).__name__}, not a string")
        if raw in memo:
            pred = memo[raw]
        else:
            pred = memo[raw] = extractor(raw)
        if pred is None:
            failures += 1
        elif pred == row["gold"]:
            correct += 1
    return CellScore(len(rows), correct, failures)


def _score_rows(rows: list[Row], extractor: extractors.Extractor, memo: dict) -> CellScore:
    """The loop of :func:`score_cell` over rows the typed decoder has checked (a str ``raw_output``, a ``gold``)."""
    correct = failures = 0
    for row in rows:
        raw = row.raw_output
        try:
            pred = memo[raw]
        except KeyError:
            pred = memo[raw] = extractor(raw)
        if pred is None:
            failures += 1
        elif pred == row.gold:
            correct += 1
    return CellScore(len(rows), correct, failures)


def _extractor(extractor_name: str, benchmark: str, task_dirs: Sequence[str]) -> extractors.Extractor:
    """The registered extractor of ``benchmark``; a benchmark the registry does not know is scored as its
    definition's ``extract_as`` says (stages/lib/tasks/, or ``task_dirs``: params' evaluate.tasks_dirs)."""
    try:
        return extractors.get_extractor(extractor_name, benchmark)
    except KeyError as error:
        from stages.lib.tasks import BenchmarkError, find_benchmark  # only for benchmarks beyond the registry's

        try:
            definition = find_benchmark(benchmark, tuple(task_dirs))
        except BenchmarkError:
            raise error from None
        return extractors.get_extractor(extractor_name, definition.extractor_key)


def extractor_provenance(extractor_name: str, benchmarks: Iterable[str], repo_head: str | None,
                         task_dirs: Sequence[str] = ()) -> dict:
    record = {
        "source_path": Path(extractors.__file__).name,  # basename: no machine path in outputs
        "content_sha256": extractors.source_sha256(),
        "extractor": extractor_name,
        "extractor_versions": {b: _extractor(extractor_name, b, task_dirs).version for b in benchmarks},
    }
    if repo_head:
        record["repo_head_commit"] = repo_head
    return record


def reparse_results(
    results: Any,
    source_name: str,
    *,
    extractor_name: str = DEFAULT_EXTRACTOR,
    reparsed_at: str | None = None,
    repo_head: str | None = None,
    task_dirs: Sequence[str] = (),
) -> dict:
    """The ``_summary_reparsed_`` body for one parsed ``_results_`` file.

    Pure: the time and the commit come in as arguments, so equal inputs give equal outputs.
    Raises :class:`ReparseError` naming ``source_name`` and the cell/row at fault.
    """
    try:
        return _reparse(results, source_name, extractor_name, reparsed_at, repo_head, task_dirs)
    except ReparseError as error:
        raise ReparseError(f"{source_name}: {error}") from None


def _reparse(results: Any, source_name: str, extractor_name: str, reparsed_at: str | None, repo_head: str | None,
             task_dirs: Sequence[str] = ()) -> dict:
    if not isinstance(results, dict):
        raise ReparseError(f"expected a JSON object at the top level, got {type(results).__name__}")
    old_summary = _mapping(results, "summary")
    old_fail_rates = _mapping(results, "parse_failure_rates")

    summary: dict[str, float | int] = {}
    fail_rates: dict[str, float] = {}
    deltas: dict[str, dict] = {}
    benchmarks: set[str] = set()
    memos: dict[str, dict] = {}  # one per benchmark: its extractor's answers, shared by the file's cells
    for key, rows in results.items():
        if key in SUMMARY_KEYS:
            continue
        cell = parse_cell_key(key)
        try:
            extractor = _extractor(extractor_name, cell.benchmark, task_dirs)
        except KeyError as error:
            raise ReparseError(f"cell {key!r}: {error.args[0]}") from None
        score = score_cell(cell, rows, extractor, memos.setdefault(cell.benchmark, {}))
        benchmarks.add(cell.benchmark)
        summary[f"{key}_acc"] = score.acc
        summary[f"{key}_count"] = score.n
        summary[f"{key}_correct"] = score.correct
        fail_rates[key] = score.fail
        old_acc = _old_value(old_summary, f"{key}_acc", "summary")
        old_fail = _old_value(old_fail_rates, key, "parse_failure_rates")
        delta = cell_delta(old_acc, score.acc, old_fail, score.fail)
        if delta is not None:
            deltas[key] = delta
    if not summary:
        raise ReparseError("no cells: a results file holds at least one template<N>_<benchmark>_data=.._instr=.. list of rows")

    return {
        "summary": summary,
        "parse_failure_rates": fail_rates,
        "reparse_metadata": {
            "reparsed_at": reparsed_at,
            "original_results_filename": source_name,
            "extractors_applied": sorted(benchmarks),
            "extractor_provenance": extractor_provenance(extractor_name, sorted(benchmarks), repo_head, task_dirs),
            "cells_changed": len(deltas),
            "delta_per_cell": deltas,
        },
    }


def _mapping(results: dict, key: str) -> dict:
    value = results.get(key, {})
    if not isinstance(value, dict):
        raise ReparseError(f"{key!r} must be an object, got {type(value).__name__}")
    return value


def _old_value(mapping: dict, key: str, where: str) -> float | None:
    value = mapping.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ReparseError(f"{where}[{key!r}] is {value!r}, not a number")
    return value


def cell_delta(old_acc: float | None, new_acc: float, old_fail: float | None, new_fail: float) -> dict | None:
    """The ``delta_per_cell`` entry, or None when neither moved by more than 1e-9.

    A missing old value counts as 0 in the delta but is written as null, as the original did.
    """
    delta_acc = new_acc - (old_acc or 0)
    delta_fail = new_fail - (old_fail or 0)
    if abs(delta_acc) <= DELTA_EPSILON and abs(delta_fail) <= DELTA_EPSILON:
        return None
    return {
        "old_acc": old_acc,
        "new_acc": new_acc,
        "delta_acc": delta_acc,
        "old_fail": old_fail,
        "new_fail": new_fail,
        "delta_fail": delta_fail,
    }


def load_results(path: Path | str) -> Any:
    """One ``_results_`` file for :func:`reparse_results`: the typed fast read, else ``json``'s whole one.

    Raises :class:`ReparseError` (malformed JSON, not UTF-8, unreadable) without the path; the caller adds it.
    """
    try:
        return _DECODER.decode(Path(path).read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        pass  # not the expected shape: json reads it all, and reparse_results names what is wrong
    try:
        return results.read_json(path)
    except results.ResultsFileError as error:
        raise ReparseError(str(error)) from None
