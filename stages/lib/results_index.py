"""Finding and loading evaluation results in the published layout, as one tidy table.

The published experiments repository (and the evaluate stage) lay results out as
``phase3/conditions/<condition>/seed<N|none>/<condition>_seed<N>_<kind>_<template>.json``
(stages/lib/paths.py holds the rule) with ``kind`` one of ``results`` (raw rows and the strict summary),
``summary`` (strict), ``summary_reparsed`` (refined) and ``summary_loglik`` (log-likelihood
accuracies, written by our evaluate stage). Two ways to say which files to read:

- :func:`discover_published`: every file of a published snapshot (the study's own results,
  whose set of sessions is whatever was published). The seed is the filename token; a file
  found twice (the known misfile: seed-123 copies in ``condition-2-es-5k/seed42/``) keeps the copy
  whose folder matches the filename and reports the other.
- :func:`expected_from_params`: the files the sessions of ``params.yaml`` must have produced, with no
  globbing: what is absent is listed, never guessed.

:func:`load_sessions` reads each results file once (in worker processes) and returns a tidy frame
with one row per (condition, seed, template, cell) and the per-example refined correctness the
paired tests need. Strict numbers come from ``_summary_`` (or the summary inside ``_results_``),
refined ones from ``_summary_reparsed_`` or, when that is absent, from reparsing the rows in memory.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from stages.lib import paths, reparse_core, results, tasks
from stages.lib.errors import StageError

KINDS = ("results", "summary", "summary_reparsed", "summary_loglik")
BASELINE = paths.BASELINE


RUN_COLUMNS = ["condition", "seed", "template", "benchmark", "data_lang", "instr_lang"]
VALUE_COLUMNS = ["n", "acc_strict", "pf_strict", "acc_refined", "pf_refined", "acc_loglik", "pf_loglik"]


class ReportError(StageError, ValueError):
    """Input the report cannot use; the message names the file and, where it applies, the cell."""


@dataclass(frozen=True)
class Grid:
    """The cells a report reads: benchmarks and languages in the tables' order, the instruction languages
    in evaluate's loop order, the template numbers, and the anchor language (the baseline and runs
    trained on it are prompted in every instruction language, the others in it and their own).

    A params report's grid is its params' (:meth:`of`); :data:`PUBLISHED` is the published study's,
    the grid of a ``--published`` snapshot, which has no params."""

    benchmarks: tuple[str, ...]
    langs: tuple[str, ...]
    instr_langs: tuple[str, ...]
    templates: tuple[int, ...]
    anchor_lang: str = "en"
    task_dirs: tuple[str, ...] = ()  # params' evaluate.tasks_dirs: definitions of benchmarks beyond stages/lib/tasks/

    @classmethod
    def of(cls, evaluate) -> "Grid":
        """params' ``evaluate`` grid, laid out in the published tables' order where they name a benchmark
        or language, the others after them by name (the order stages/lib/paper_order.py sorts every table in)."""
        def order(names: Sequence[str], published: Sequence[str]) -> tuple[str, ...]:
            known = [n for n in published if n in names]
            return tuple(known + sorted(n for n in set(names) if n not in known))

        langs = list(dict.fromkeys([*evaluate.data_langs, *evaluate.instr_langs]))
        templates = tuple(int(t.removeprefix("template")) for t in evaluate.templates if t.startswith("template"))
        return cls(order(evaluate.benchmarks, PUBLISHED.benchmarks), order(langs, PUBLISHED.langs),
                   tuple(evaluate.instr_langs), templates, evaluate.anchor_lang, tuple(evaluate.tasks_dirs))

    def check_cell(self, path: Path, cell: reparse_core.Cell) -> None:
        if cell.benchmark not in self.benchmarks:
            raise ReportError(f"{path}: cell {cell.key!r}: benchmark {cell.benchmark!r} is not one of the grid's "
                              f"{', '.join(self.benchmarks)}")
        for lang in (cell.data_lang, cell.instr_lang):
            if lang not in self.langs:
                raise ReportError(f"{path}: cell {cell.key!r}: language {lang!r} is not one of the study's {', '.join(self.langs)}")

    def title(self, benchmark: str) -> str:
        """The benchmark's name in tables and figures: its definition's ``title``."""
        return tasks.find_benchmark(benchmark, self.task_dirs).title

    def session_instr_langs(self, condition: str) -> tuple[str, ...]:
        lang = paths.condition_parts(condition)["lang"]
        if lang is None or lang == self.anchor_lang:
            return self.instr_langs
        return (self.anchor_lang, lang)


# The published study: its tables list SIB-200, XNLI, X-CSQA, Belebele and en, es, zh, ur (resource tier
# descending); its evaluate looped over the instruction languages en, zh, es, ur, with two template wordings.
PUBLISHED = Grid(("sib200", "xnli", "csqa", "belebele"), ("en", "es", "zh", "ur"), ("en", "zh", "es", "ur"), (1, 2))
BENCHMARKS, LANGS, TEMPLATES = PUBLISHED.benchmarks, PUBLISHED.langs, PUBLISHED.templates  # the paper's tables


@dataclass
class Session:
    """One (condition, seed, template label) and the files that hold it."""

    condition: str
    seed: str
    template: str  # "template1", "template2" or "all"
    files: dict[str, Path] = field(default_factory=dict)  # kind -> path


@dataclass
class Index:
    root: Path
    sessions: list[Session]
    missing: list[dict]  # rows of missing.tsv
    notices: list[str]  # dropped duplicates and the like, for stderr and provenance


def seed_sort_key(seed: str) -> tuple[int, int]:
    return (-1, 0) if seed == "none" else (0, int(seed))


def display_name(condition: str) -> str:
    """The paper's row label: ``Baseline``, ``Cond 2 (zh, 5k)``."""
    if condition == BASELINE:
        return "Baseline"
    info = paths.condition_parts(condition)
    return f"Cond {info['number']} ({info['lang']}, {info['tier']})"


def condition_order(condition: str) -> tuple:
    """Paper order: baseline, then by condition number, language (the tables' order, others after), tier size."""
    info = paths.condition_parts(condition)
    lang = LANGS.index(info["lang"]) if info["lang"] in LANGS else len(LANGS)
    tier = int(info["tier"][:-1]) if info["tier"] else 0
    return (info["number"], lang, tier, condition)


# --- which files -------------------------------------------------------------------------------------


def discover_published(root: Path | str) -> Index:
    """Every session of a published snapshot under ``root/phase3/conditions``, duplicates resolved."""
    root = Path(root)
    base = root / "phase3" / "conditions"
    if not base.is_dir():
        raise ReportError(f"{root}: no phase3/conditions folder (expected the published layout)")
    found: dict[tuple, list[Path]] = defaultdict(list)
    notices: list[str] = []
    for path in sorted(base.glob("*/seed*/*.json")):
        name = paths.parse_result_file_name(path.name)
        if name is None or name.smoke is not None:
            notices.append(f"ignored {path.relative_to(root)}: not a <condition>_seed<N>_<kind>_<template>.json name")
            continue
        if name.kind == "partial":
            continue
        found[(name.condition, name.seed, name.template, name.kind)].append(path)
    chosen: dict[tuple, Path] = {}
    for key, copies in sorted(found.items()):
        chosen[key] = _dedup(root, key, copies, notices)
    sessions: dict[tuple, Session] = {}
    for (condition, seed, template, kind), path in chosen.items():
        sessions.setdefault((condition, seed, template), Session(condition, seed, template)).files[kind] = path
    ordered = sorted(sessions.values(), key=lambda s: (condition_sort(s.condition), seed_sort_key(s.seed), s.template))
    missing = []
    for session in ordered:
        missing += _missing_kinds(session)
    for condition, seed in sorted({(c, s) for c, s, t in sessions if t != "all"}):  # a template file set absent
        for template in (f"template{t}" for t in PUBLISHED.templates):
            if (condition, seed, template) not in sessions:
                missing += _missing_kinds(Session(condition, seed, template))
    return Index(root, ordered, missing, notices)


def condition_sort(condition: str) -> tuple:
    try:
        return (0, *condition_order(condition))
    except paths.LayoutError:
        return (1, 0, 0, 0, condition)


def _dedup(root: Path, key: tuple, paths: list[Path], notices: list[str]) -> Path:
    condition, seed, template, kind = key
    if len(paths) == 1:
        return paths[0]
    home = [p for p in paths if p.parent.name == f"seed{seed}" and p.parent.parent.name == condition]
    if len(home) != 1:
        names = ", ".join(str(p.relative_to(root)) for p in paths)
        raise ReportError(f"{condition} seed{seed} {template} ({kind}) is present {len(paths)} times and no single "
                          f"copy sits in {condition}/seed{seed}/: {names}")
    for other in paths:
        if other != home[0]:
            notices.append(
                f"duplicate of {condition} seed{seed} {template} ({kind}): kept {home[0].relative_to(root)}, dropped "
                f"{other.relative_to(root)} (its folder {other.parent.name} does not match the file's seed{seed})"
            )
    return home[0]


def _missing_kinds(session: Session) -> list[dict]:
    rows = []
    where = {"condition": session.condition, "seed": session.seed, "template": session.template}
    if "summary" not in session.files and "results" not in session.files:
        rows.append({**where, "what": "strict", "detail": "no _summary_ or _results_ file"})
    if "summary_reparsed" not in session.files and "results" not in session.files:
        rows.append({**where, "what": "refined", "detail": "no _summary_reparsed_ file and no _results_ to reparse"})
    return rows


def expected_from_params(
    sessions: Mapping[str, object],
    eval_dir: Path | str,
    templates: Sequence[str] = ("template1", "template2"),
    reparsed_dir: Path | str | None = None,
    phase: str = "phase3",
) -> Index:
    """The files the params' sessions (``evaluate.sessions``: the baseline and every run, each with its
    published condition folder and seed) must have, checked one by one; no globbing.
    ``reparsed_dir``: where the reparse stage wrote the refined summaries (the same layout)."""
    eval_dir = Path(eval_dir)
    wanted = sorted({(s.condition, s.seed) for s in sessions.values()},
                    key=lambda cs: (condition_sort(cs[0]), seed_sort_key(paths.seed_token(cs[1]))))
    found, missing = [], []
    for condition, seed in wanted:
        folder = paths.eval_folder(phase, condition, seed)
        for template in templates:
            session = Session(condition, paths.seed_token(seed), template)
            for kind in KINDS:
                name = paths.result_file_name(condition, seed, kind, template)
                root = reparsed_dir if kind == "summary_reparsed" and reparsed_dir is not None else eval_dir
                path = Path(root) / folder / name
                if path.is_file():
                    session.files[kind] = path
            gaps = _missing_kinds(session)
            missing += gaps
            if not any(g["what"] == "strict" for g in gaps):
                found.append(session)
    return Index(eval_dir, found, missing, [])


# --- loading -----------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """What one session contributes: tidy rows, per-example refined correctness, notes."""

    rows: list[dict]
    correct: dict[tuple, np.ndarray]  # (template, benchmark, data, instr) -> bool per example
    notes: list[str]


def read_json(path: Path) -> dict:
    try:
        data = results.read_json(path)
    except results.ResultsFileError as error:
        raise ReportError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _summary_block(path: Path, body: dict, grid: Grid) -> tuple[dict, dict]:
    summary, rates = body.get("summary"), body.get("parse_failure_rates", {})
    if not isinstance(summary, dict):
        raise ReportError(f"{path}: no 'summary' object")
    if not isinstance(rates, dict):
        raise ReportError(f"{path}: 'parse_failure_rates' is not an object")
    cells: dict[str, dict] = {}
    for key, value in summary.items():
        stem, _, suffix = key.rpartition("_")
        if suffix not in ("acc", "count", "correct"):
            raise ReportError(f"{path}: summary key {key!r} does not end in _acc, _count or _correct")
        _cell(path, stem, grid)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReportError(f"{path}: cell {stem!r}: summary value {key!r} is {value!r}, not a number")
        cells.setdefault(stem, {})[suffix] = value
    for key, value in rates.items():
        _cell(path, key, grid)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReportError(f"{path}: cell {key!r}: parse failure rate is {value!r}, not a number")
        cells.setdefault(key, {})["pf"] = value
    for key, values in cells.items():
        if "acc" not in values:
            raise ReportError(f"{path}: cell {key!r} has no {key}_acc in its summary")
    return summary, cells


def _cell(path: Path, key: str, grid: Grid) -> reparse_core.Cell:
    try:
        cell = reparse_core.parse_cell_key(key)
    except reparse_core.ReparseError as error:
        raise ReportError(f"{path}: {error}") from None
    grid.check_cell(path, cell)
    return cell


def _refined_correct(path: Path, cell: reparse_core.Cell, rows: object, task_dirs: Sequence[str]) -> np.ndarray:
    """Per-example refined correctness: each distinct raw output is extracted once."""
    if not isinstance(rows, list) or not rows:
        raise ReportError(f"{path}: cell {cell.key!r}: expected a non-empty list of rows")
    try:
        raws = [row["raw_output"] for row in rows]
        golds = [row["gold"] for row in rows]
    except (TypeError, KeyError) as error:
        raise ReportError(f"{path}: cell {cell.key!r}: a row lacks {error}") from None
    codes, uniques = pd.factorize(pd.Series(raws, dtype=object))
    extract = reparse_core._extractor("refined", cell.benchmark, task_dirs)
    try:
        preds = np.array([extract(raw) for raw in uniques], dtype=object)
    except (TypeError, AttributeError):
        raise ReportError(f"{path}: cell {cell.key!r}: a raw_output is not a string") from None
    if (codes < 0).any():
        raise ReportError(f"{path}: cell {cell.key!r}: a raw_output is null")
    return preds[codes] == np.array(golds, dtype=object)


def load_session(session: Session, with_rows: bool = True, grid: Grid = PUBLISHED) -> Loaded:
    """Read one session's files (each once) into tidy rows; raises :class:`ReportError`."""
    files = session.files
    notes: list[str] = []
    results = read_json(files["results"]) if "results" in files else None
    strict_path = files.get("summary", files.get("results"))
    _, strict = _summary_block(strict_path, read_json(files["summary"]) if "summary" in files else results, grid)

    refined: dict[str, dict] = {}
    if "summary_reparsed" in files:
        _, refined = _summary_block(files["summary_reparsed"], read_json(files["summary_reparsed"]), grid)
    elif results is not None:
        try:
            body = reparse_core.reparse_results(results, files["results"].name, task_dirs=grid.task_dirs)
        except reparse_core.ReparseError as error:
            raise ReportError(f"{files['results'].parent}{os.sep}{error}") from None
        _, refined = _summary_block(files["results"], body, grid)
        notes.append(f"{files['results']}: no _summary_reparsed_ file; reparsed in memory")
    loglik: dict[str, dict] = {}
    if "summary_loglik" in files:
        _, loglik = _summary_block(files["summary_loglik"], read_json(files["summary_loglik"]), grid)

    correct: dict[tuple, np.ndarray] = {}
    counts: dict[str, int] = {}
    if results is not None and with_rows:
        for key, rows in results.items():
            if key in reparse_core.SUMMARY_KEYS:
                continue
            cell = _cell(files["results"], key, grid)
            vector = _refined_correct(files["results"], cell, rows, grid.task_dirs)
            counts[key] = vector.size
            correct[(int(cell.template[8:]), cell.benchmark, cell.data_lang, cell.instr_lang)] = vector
            stated = refined.get(key, {}).get("correct")
            if stated is not None and int(stated) != int(vector.sum()):
                notes.append(f"{files['results']}: cell {key!r}: rows give {int(vector.sum())} refined correct, "
                             f"the reparsed summary {int(stated)} (stale _summary_reparsed_?)")

    out = []
    for key in sorted(set(strict) | set(refined) | set(loglik)):
        cell = _cell(strict_path, key, grid)
        n = refined.get(key, {}).get("count", counts.get(key))
        out.append({
            "condition": session.condition,
            "seed": session.seed,
            "template": int(cell.template[8:]),
            "benchmark": cell.benchmark,
            "data_lang": cell.data_lang,
            "instr_lang": cell.instr_lang,
            "n": None if n is None else int(n),
            "acc_strict": strict.get(key, {}).get("acc", np.nan),
            "pf_strict": strict.get(key, {}).get("pf", np.nan),
            "acc_refined": refined.get(key, {}).get("acc", np.nan),
            "pf_refined": refined.get(key, {}).get("pf", np.nan),
            "acc_loglik": loglik.get(key, {}).get("acc", np.nan),
            "pf_loglik": loglik.get(key, {}).get("pf", np.nan),
        })
    return Loaded(out, correct, notes)


def _load_one(session: Session, how: tuple[bool, Grid]) -> tuple[Loaded | None, str | None]:
    try:
        return load_session(session, *how), None
    except ReportError as error:
        return None, str(error)


def _each_session(read, sessions: Sequence[Session], arg, jobs: int) -> list:
    """``read(session, arg)`` for every session, in ``jobs`` processes; every error raised together."""
    jobs = max(1, min(jobs, len(sessions) or 1))
    if jobs == 1:
        outcomes = [read(s, arg) for s in sessions]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(read, sessions, [arg] * len(sessions)))
    errors = [error for _, error in outcomes if error]
    if errors:
        raise ReportError("\n".join(errors))
    return outcomes


def load_sessions(sessions: Sequence[Session], *, jobs: int = 1, with_rows: bool = True,
                  grid: Grid = PUBLISHED) -> tuple[pd.DataFrame, dict, list[str]]:
    """All sessions as (tidy frame, per-example correctness keyed by run and cell, notes).

    Bad files stop the report (:class:`ReportError`, every bad file named) after all are read.
    """
    outcomes = _each_session(_load_one, sessions, (with_rows, grid), jobs)
    rows, correct, notes = [], {}, []
    for session, (loaded, _) in zip(sessions, outcomes):
        rows += loaded.rows
        notes += loaded.notes
        for key, vector in loaded.correct.items():
            correct[(session.condition, session.seed, *key)] = vector
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS + VALUE_COLUMNS)
    frame["n"] = frame["n"].astype("Int64")
    dup = frame.duplicated(RUN_COLUMNS, keep=False)
    if dup.any():
        first = frame.loc[dup, RUN_COLUMNS].iloc[0].to_dict()
        raise ReportError(f"cell given twice (a template1/2 file and an 'all' file?): {first}")
    return sort_runs(frame, grid), correct, notes


def sort_runs(frame: pd.DataFrame, grid: Grid = PUBLISHED) -> pd.DataFrame:
    """Runs in the study's order: condition, seed (numerically), template, benchmark, data and instruction language."""
    from stages.lib.paper_order import sort_rows  # paper_order reads the study's order from this module

    return sort_rows(frame, ["condition", "seed", "template", "benchmark", "data_lang", "instr_lang"], grid.benchmarks,
                     keys={"seed": seed_sort_key})


def expected_cells(condition: str, benchmarks: Iterable[str] | None = None, grid: Grid = PUBLISHED) -> list[tuple]:
    """(template, benchmark, data, instr) of a full session of ``condition``: every template, benchmark and data
    language of ``grid``, prompted in the instruction languages the condition's runs are (:meth:`Grid.session_instr_langs`)."""
    return [(t, b, d, i) for t in grid.templates for b in (grid.benchmarks if benchmarks is None else benchmarks)
            for d in grid.langs for i in grid.session_instr_langs(condition)]


ROW_COLUMNS = RUN_COLUMNS + ["gold", "raw_output"]


def _session_rows(session: Session, how: tuple[tuple[str, ...], Grid]) -> tuple[list[tuple] | None, str | None]:
    benchmarks, grid = how
    path = session.files.get("results")
    if path is None:
        return [], None
    try:
        body = read_json(path)
        out = []
        for key, rows in body.items():
            if key in reparse_core.SUMMARY_KEYS:
                continue
            cell = _cell(path, key, grid)
            if cell.benchmark not in benchmarks:
                continue
            if not isinstance(rows, list):
                raise ReportError(f"{path}: cell {key!r}: expected a list of rows")
            head = (session.condition, session.seed, int(cell.template[8:]), cell.benchmark, cell.data_lang, cell.instr_lang)
            for i, row in enumerate(rows):
                raw, gold = (row.get("raw_output"), row.get("gold")) if isinstance(row, dict) else (None, None)
                if not isinstance(raw, str) or gold is None:
                    raise ReportError(f"{path}: cell {key!r}: row {i} lacks a string raw_output or a gold")
                out.append((*head, gold, raw))
        return out, None
    except ReportError as error:
        return None, str(error)


def load_rows(sessions: Sequence[Session], benchmarks: Sequence[str], *, jobs: int = 1, grid: Grid = PUBLISHED) -> pd.DataFrame:
    """Every example of ``benchmarks`` in the sessions' ``_results_`` files, in dataset order (:data:`ROW_COLUMNS`).

    The per-row analyses (label bias, category confusions, constant answers) need the raw outputs
    themselves, which :func:`load_sessions` reduces to correctness; bad files stop with every one named.
    """
    outcomes = _each_session(_session_rows, sessions, (tuple(benchmarks), grid), jobs)
    return pd.DataFrame([row for rows, _ in outcomes for row in rows], columns=ROW_COLUMNS)
