"""The published result files of the study, in one place: names, cell keys, bodies, I/O.

``legesher/language-decoded-experiments`` lays its Phase 3 results out as
``phase3/conditions/<condition>/seed<N|none>/<condition>_seed<N|none>[_smoke<N>]_<kind>_<template>.json``
(the folder and file-name rules: stages/lib/paths.py). Evaluate writes exactly that layout under
``metrics/eval``, and reparse and report read it, both ours and the published files, through this module.

- ``_results_<template>.json``: ``{"summary": {"<cell>_acc": ...}, "parse_failure_rates":
  {"<cell>": ...}, "<cell>": [row, ...], ...}``, rows in dataset order;
- ``_summary_<template>.json``: the first two keys only;
- ``_summary_reparsed_<template>.json``: written by reparse;
- ``_summary_loglik_<template>.json`` (ours, beyond the original): the same shape, scored by
  log-likelihood instead of generation and extraction, plus the per-row predictions.

Written as the original wrote them: ``json.dumps(indent=2, ensure_ascii=False)``, no final
newline, unrounded floats, atomically (a ``.tmp`` file then a rename).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from stages.lib.errors import StageError
from stages.lib.paths import BASELINE  # noqa: F401 - the session of the base model, for readers of results

# A cell key: any benchmark name and language code (params' plain names); which ones a study has is
# its grid (params' evaluate section and stages/lib/tasks/), checked where the cells are read.
CELL_KEY = re.compile(r"^(template\d+)_([A-Za-z0-9][A-Za-z0-9_-]*?)_data=([a-z]{2,3})_instr=([a-z]{2,3})$")


@dataclass(frozen=True)
class Cell:
    template: str
    benchmark: str
    data_lang: str
    instr_lang: str

    @property
    def key(self) -> str:
        return f"{self.template}_{self.benchmark}_data={self.data_lang}_instr={self.instr_lang}"


def parse_cell_key(key: str) -> Cell:
    match = CELL_KEY.match(key)
    if not match:
        raise ValueError(f"cell key {key!r} is not template<N>_<benchmark>_data=<lang>_instr=<lang>")
    return Cell(*match.groups())


# --------------------------------------------------------------------------- bodies


def cell_scores(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(n, correct, parse failures) of one cell; a None prediction counts as wrong."""
    n = len(rows)
    correct = sum(1 for row in rows if row["correct"])
    failures = sum(1 for row in rows if row["pred"] is None)
    return n, correct, failures


def results_body(cells: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict:
    """The ``_results_`` file: summary, parse-failure rates, then every cell's rows, in cell order."""
    summary, failures = {}, {}
    for key, rows in cells.items():
        n, correct, failed = cell_scores(rows)
        if n == 0:
            raise ValueError(f"cell {key}: no rows")
        summary[f"{key}_acc"] = correct / n
        failures[key] = failed / n
    return {"summary": summary, "parse_failure_rates": failures, **{key: list(rows) for key, rows in cells.items()}}


def summary_body(results: Mapping[str, Any]) -> dict:
    return {"summary": results["summary"], "parse_failure_rates": results["parse_failure_rates"]}


def loglik_body(predictions: Mapping[str, Sequence[str]], golds: Mapping[str, Sequence[str]], metadata: dict) -> dict:
    """``_summary_loglik_``: accuracy of the highest-probability answer per cell, no extraction."""
    summary, failures = {}, {}
    for key, preds in predictions.items():
        gold = golds[key]
        correct = sum(1 for p, g in zip(preds, gold) if p == g)
        summary[f"{key}_acc"] = correct / len(preds)
        summary[f"{key}_count"] = len(preds)
        summary[f"{key}_correct"] = correct
        failures[key] = 0.0
    return {
        "summary": summary,
        "parse_failure_rates": failures,
        "loglik_metadata": metadata,
        "predictions": {key: list(preds) for key, preds in predictions.items()},
    }


# --------------------------------------------------------------------------- I/O


def dumps(body: Any) -> str:
    """The published layout: two-space indent, UTF-8 as is, keys in insertion order, no final newline."""
    return json.dumps(body, indent=2, ensure_ascii=False)


def write_atomic(path: Path | str, text: str) -> None:
    """Write a sibling temp file, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class ResultsFileError(StageError, ValueError):
    """A result file that cannot be read as JSON; the message says why (callers add the path)."""


def read_json(path: Path | str) -> Any:
    """One result file's JSON, or a ResultsFileError saying what is wrong with it."""
    try:
        return json.loads(Path(path).read_bytes())
    except json.JSONDecodeError as error:
        raise ResultsFileError(f"malformed or truncated JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except UnicodeDecodeError as error:
        raise ResultsFileError(f"not UTF-8: {error.reason} at byte {error.start}") from None
    except OSError as error:
        raise ResultsFileError(f"cannot read: {error.strerror or error}") from None


def write_body(path: Path | str, body: Any) -> None:
    write_atomic(path, dumps(body))

