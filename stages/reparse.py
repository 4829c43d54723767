"""reparse: re-score stored raw outputs with the refined extractors (the paper's numbers).

    python -m stages.reparse RESULTS.json...                 # writes each sibling _summary_reparsed_
    python -m stages.reparse --jobs 2 --stamp-time FILE...   # 2 processes; reparsed_at as the original
    python -m stages.reparse --extract sib200 --extractor strict < outputs.jsonl
    python -m stages.reparse --no-repo-head --jobs 1 --sessions params.yaml   # dvc.yaml: reparse (every session)
    python -m stages.reparse --no-repo-head --published data/published/experiments --out-dir data/published/reparsed
                                                             # dvc.yaml: reparse_published

Reads ``{condition}_seed{N}[_smokeN]_results_{template}.json`` in the published schema of
``legesher/language-decoded-experiments`` (cells ``template1_xnli_data=zh_instr=en`` holding rows
with ``raw_output``, ``pred``, ``gold``, ``correct``) and writes, beside each, its
``..._summary_reparsed_{template}.json`` (the original's reparse output name): per cell ``_acc``,
``_count`` and ``_correct``, the parse-failure rates, and ``reparse_metadata`` with the
extractor versions, the sha256 of ``stages/lib/extractors.py``, the repository's git HEAD and
every cell whose accuracy or failure rate moved by more than 1e-9 against the ``summary``
embedded in the results file. There is no re-inference: only ``raw_output`` and ``gold`` are read.

Differences from ``reparse_results.py``, on purpose:

- no wall-clock time by default, so two runs write identical bytes: ``reparsed_at`` is ``null``
  (the key stays, so readers of the published schema still find it); ``--stamp-time`` writes the
  UTC ISO-8601 time as the original did;
- ``repo_head_commit`` ties the output to a commit, as published; ``--no-repo-head`` leaves it
  out for outputs that must not change when only an unrelated commit does;
- bad input stops that file with a message naming the file, cell and row (the original skipped
  empty or odd cells silently, and wrote a 0-cell summary for a file with no cells); the other files still run, and outputs are written atomically;
- ``extractors_applied`` lists the benchmarks present in the file (all four in a full file, as
  published) and ``extractor_provenance`` adds ``extractor`` and ``extractor_versions``.

Kept as the original: keys and key order, ``json.dumps(indent=2, ensure_ascii=False)`` without a
final newline, ``old_acc``/``old_fail`` written as ``null`` when the results file lacks them
(their delta counts them as 0), and unrounded floats.

``--published TREE --out-dir OUT`` reparses every ``phase3/conditions/<condition>/seed<N>/`` results
file of an imported snapshot (stages/import_published.py) into the same layout under OUT; when the
import was skipped (``published.enabled: false``) it writes only ``OUT/status.json`` saying so.

The pure core (cell keys, scoring, the summary body, the fast typed read) is
``stages/lib/reparse_core.py``; this module reads, writes and parallelises.

``--extract`` reads one JSON-encoded raw output per line on stdin and writes one JSON value per
line (the label, or ``null``), for checking a single answer by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from stages.lib import extractors, results
from stages.lib.errors import STAGE_FAILED, exit_stage
from stages.lib.paths import parse_result_file_name
from stages.lib.reparse_core import (  # noqa: F401 - the pure core, re-exported for callers of stages.reparse
    CELL_KEY, DEFAULT_EXTRACTOR, DELTA_EPSILON, SUMMARY_KEYS, Cell, CellScore, ReparseError, _reparse, cell_delta,
    extractor_provenance, load_results, parse_cell_key, reparse_results, score_cell,
)

dumps = results.dumps
write_atomic = results.write_atomic


def reparsed_path(results_path: Path | str, out_dir: Path | str | None = None) -> Path:
    """``X_results_template1.json`` -> ``X_summary_reparsed_template1.json``, in the same folder
    or in ``out_dir`` (the pipeline's stage, whose output cannot sit inside evaluate's)."""
    results_path = Path(results_path)
    parsed = parse_result_file_name(results_path.name)
    if parsed is None or parsed.kind != "results":
        raise ReparseError("not a results file: the name must be <condition>_seed<N|none>_results_<template>.json")
    name = parsed.sibling("summary_reparsed")
    return Path(out_dir) / name if out_dir is not None else results_path.with_name(name)


def is_results_file(path: Path) -> bool:
    parsed = parse_result_file_name(path.name)
    return parsed is not None and parsed.kind == "results"


def repo_head_commit() -> str | None:
    """The git HEAD of the checkout holding the extractor source, or None outside git."""
    from stages.lib.provenance import code_provenance  # imported here: importlib.metadata costs start-up time

    return code_provenance(Path(extractors.__file__).resolve().parent)["git_sha"]


def reparse_file(
    path: Path | str,
    *,
    extractor_name: str = DEFAULT_EXTRACTOR,
    stamp_time: bool = False,
    repo_head: str | None = None,
    out_dir: Path | str | None = None,
    task_dirs: Sequence[str] = (),
) -> tuple[Path, dict]:
    """Reparse one results file and write its sibling (or into ``out_dir``); returns (output path, body).
    ``task_dirs``: params' evaluate.tasks_dirs, where benchmarks beyond stages/lib/tasks/ are defined."""
    path = Path(path)
    try:
        out = reparsed_path(path, out_dir)
        body = _reparse(load_results(path), path.name, extractor_name, _now() if stamp_time else None, repo_head,
                        task_dirs)
    except ReparseError as error:
        raise ReparseError(f"{path}: {error}") from None
    write_atomic(out, dumps(body))
    return out, body


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _reparse_one(
    path: str, extractor_name: str, stamp_time: bool, repo_head: str | None, out_dir: str | None = None,
    task_dirs: Sequence[str] = (),
) -> tuple[str, str | None, int, int]:
    """A worker's task: (path, error or None, cells, cells changed). Never raises for bad input."""
    try:
        _, body = reparse_file(
            path, extractor_name=extractor_name, stamp_time=stamp_time, repo_head=repo_head, out_dir=out_dir,
            task_dirs=task_dirs,
        )
    except ReparseError as error:
        return path, str(error), 0, 0
    except OSError as error:  # the output folder is not writable, the disk is full...
        return path, f"{path}: cannot write the reparsed summary: {error}", 0, 0
    except Exception as error:  # noqa: BLE001 - one file's surprise must not stop the others
        return path, f"{path}: unexpected {type(error).__name__}: {error}", 0, 0
    meta = body["reparse_metadata"]
    return path, None, len(body["parse_failure_rates"]), meta["cells_changed"]


def reparse_files(
    paths: Sequence[Path | str],
    *,
    jobs: int | None = None,
    extractor_name: str = DEFAULT_EXTRACTOR,
    stamp_time: bool = False,
    repo_head: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    out_dir: Path | str | Sequence[Path | str] | None = None,
    task_dirs: Sequence[str] = (),
) -> int:
    """Reparse every file, one process per core; returns how many failed (each already reported).

    ``out_dir``: None (beside each file), one folder, or a list with one folder per file."""
    out = out or sys.stdout
    err = err or sys.stderr
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    dirs = list(out_dir) if isinstance(out_dir, (list, tuple)) else [out_dir] * len(paths)
    folders = [str(d) if d is not None else None for d in dirs]
    tasks = [(str(p), extractor_name, stamp_time, repo_head, folder, tuple(task_dirs)) for p, folder in zip(paths, folders)]
    if jobs == 1:
        outcomes = (_reparse_one(*task) for task in tasks)
        return _report(outcomes, out, err, folders)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return _report(pool.map(_reparse_one, *zip(*tasks)), out, err, folders)


def _report(
    outcomes: Iterable[tuple[str, str | None, int, int]], out: TextIO, err: TextIO, folders: Sequence[str | None]
) -> int:
    failed = 0
    for (path, error, cells, changed), folder in zip(outcomes, folders):
        if error:
            failed += 1
            print(f"reparse: error: {error}", file=err, flush=True)
        else:
            print(f"{reparsed_path(path, folder)}: {cells} cells, {changed} changed", file=out, flush=True)
    return failed


def extract_stream(benchmark: str, extractor_name: str, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """One JSON string per input line -> one JSON label (or null) per output line."""
    extractor = extractors.get_extractor(extractor_name, benchmark)
    try:
        for number, line in enumerate(stdin, start=1):
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                print(f"reparse: error: stdin line {number}: not JSON ({error.msg})", file=stderr)
                return STAGE_FAILED
            if not isinstance(raw, str):
                print(f"reparse: error: stdin line {number}: expected a JSON string, got {type(raw).__name__}", file=stderr)
                return STAGE_FAILED
            stdout.write(json.dumps(extractor(raw), ensure_ascii=False) + "\n")
    except UnicodeDecodeError as error:  # decoded a block at a time: no exact line to name
        print(f"reparse: error: stdin is not UTF-8 ({error.reason}, byte {error.object[error.start:error.start + 1]!r})",
              file=stderr)
        return STAGE_FAILED
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stages.reparse",
        description="Re-score _results_ files with the refined extractors, or extract labels from stdin.",
    )
    parser.add_argument("files", nargs="*", type=Path, help="..._results_<template>.json files, or folders of them")
    parser.add_argument("--extract", choices=extractors.BENCHMARKS, help="read JSON strings on stdin, write labels")
    parser.add_argument(
        "--extractor",
        choices=extractors.EXTRACTOR_NAMES,
        default=None,
        help=f"with --extract: which extractor (default {DEFAULT_EXTRACTOR}); files are always scored with {DEFAULT_EXTRACTOR}",
    )
    parser.add_argument("--jobs", type=int, default=None, help="processes (default: one per core, at most one per file)")
    parser.add_argument("--stamp-time", action="store_true", help="write reparsed_at (UTC ISO-8601); outputs then differ per run")
    parser.add_argument("--no-repo-head", action="store_true", help="leave repo_head_commit out of the provenance")
    parser.add_argument("--out-dir", type=Path, help="write the reparsed summaries here instead of beside each file")
    parser.add_argument("--published", type=Path, metavar="TREE",
                        help="the dvc stage reparse_published: every Phase 3 results file of an imported snapshot, "
                             "into --out-dir in the same layout")
    parser.add_argument("--sessions", type=Path, metavar="PARAMS",
                        help="the dvc stage: every session of evaluate.sessions in PARAMS, its out into its reparsed folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.extract:
        if args.files:
            parser.error("--extract reads stdin; give no files with it")
        name = args.extractor or DEFAULT_EXTRACTOR
        try:
            extractors.get_extractor(name, args.extract)
        except KeyError as error:
            parser.error(error.args[0])
        for stream in (sys.stdin, sys.stdout):  # raw outputs are UTF-8 whatever the locale
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(encoding="utf-8")
        return extract_stream(args.extract, name, sys.stdin, sys.stdout, sys.stderr)
    if args.published is not None:
        if args.files or args.sessions is not None or args.out_dir is None:
            parser.error("--published TREE takes no files or --sessions, and needs --out-dir")
        repo_head = None if args.no_repo_head else repo_head_commit()
        return reparse_published(args.published, args.out_dir, jobs=args.jobs, repo_head=repo_head)
    if args.sessions is not None:
        if args.files or args.out_dir is not None:
            parser.error("--sessions takes each session's folders from the params file; give no files or --out-dir")
        return reparse_sessions(args.sessions, jobs=args.jobs, stamp_time=args.stamp_time, no_repo_head=args.no_repo_head)
    if not args.files:
        parser.error("give one or more _results_ files, or --extract BENCHMARK, or --sessions params.yaml")
    if args.extractor not in (None, DEFAULT_EXTRACTOR):
        parser.error(f"files are scored with the {DEFAULT_EXTRACTOR} extractor (the published _summary_reparsed_); "
                     "use reparse_results(..., extractor_name=...) for another")
    files = []
    for path in args.files:
        if path.is_dir():
            found = results_files(path)
            if not found and args.out_dir is None:
                parser.error(f"{path}: no _results_ files in this folder")
            if not found:
                print(f"reparse: {path}: no Phase 3 _results_ files; nothing to reparse", file=sys.stderr)
            files += found
        else:
            files.append(path)
    repo_head = None if args.no_repo_head else repo_head_commit()
    if args.out_dir is not None:
        return reparse_into(args.out_dir, files, jobs=args.jobs, stamp_time=args.stamp_time, repo_head=repo_head)
    return STAGE_FAILED if reparse_files(files, jobs=args.jobs, stamp_time=args.stamp_time, repo_head=repo_head) else 0


def results_files(folder: Path) -> list[Path]:
    """A folder's ``_results_`` files, sorted; a Phase 2 session has none (its tables use the strict extractor only)."""
    return sorted(p for p in folder.glob("*.json") if is_results_file(p))


def reparse_into(out_dir: Path, files: list[Path], *, jobs: int | None, stamp_time: bool, repo_head: str | None,
                 task_dirs: Sequence[str] = ()) -> int:
    """One stage output folder: stale summaries removed, the files' summaries and a provenance.json written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*_summary_reparsed_*.json"):  # nothing stale may survive in a stage output
        stale.unlink()
    failed = reparse_files(files, jobs=jobs, stamp_time=stamp_time, repo_head=repo_head, out_dir=out_dir,
                           task_dirs=task_dirs) if files else 0
    if not failed:
        from stages.lib.provenance import write_provenance

        write_provenance(out_dir, "reparse", {"inputs": [p.name for p in files], "repo_head": repo_head})
    return STAGE_FAILED if failed else 0


def reparse_sessions(params_path: Path, *, jobs: int | None, stamp_time: bool, no_repo_head: bool) -> int:
    """The dvc stage: every session of ``evaluate.sessions``, its ``out`` into its ``reparsed``.

    One process for all sessions: the work is milliseconds a session, while a stage per session
    cost 1.7 s each in process start and dvc.lock rewrites. A session not evaluated yet is
    skipped with its name (the report lists its cells as missing); a bad results file fails the
    stage, naming the file, after the other sessions are written."""
    from stages.lib.params import ParamsError, load_params

    try:
        evaluate = load_params(params_path).evaluate
        sessions = evaluate.sessions
    except (ParamsError, OSError) as error:
        print(f"reparse: {error}", file=sys.stderr)
        return STAGE_FAILED
    repo_head = None if no_repo_head else repo_head_commit()
    failed = 0
    for name, session in sessions.items():
        source = Path(session.out)
        if not source.is_dir():  # not evaluated yet: the report lists its cells as missing
            print(f"reparse: session {name!r}: skipped, {source} does not exist (dvc repro evaluate@{name})", file=sys.stderr)
            continue
        files = results_files(source)
        if not files:
            print(f"reparse: session {name!r}: no Phase 3 _results_ files in {source}; nothing to reparse", file=sys.stderr)
        failed += reparse_into(Path(session.reparsed), files, jobs=jobs, stamp_time=stamp_time, repo_head=repo_head,
                               task_dirs=evaluate.tasks_dirs)
    return STAGE_FAILED if failed else 0

def reparse_published(tree: Path, out_dir: Path, *, jobs: int | None, repo_head: str | None) -> int:
    """The dvc stage reparse_published: an imported snapshot's Phase 3 results files, the layout kept."""
    from stages.lib import published

    reason = published.skipped_reason(tree)
    if reason is not None:
        published.write_skipped(out_dir, "reparse_published", f"the import was skipped: {reason}",
                                "see data/published/experiments/status.json")
        print(f"reparse: skipped, the import was skipped ({reason}); {out_dir / published.STATUS} says so")
        return 0
    files = sorted(p for p in (tree / "phase3" / "conditions").glob("*/seed*/*.json") if is_results_file(p))
    if not files:
        print(f"reparse: {tree}: no phase3/conditions/<condition>/seed<N>/..._results_<template>.json files",
              file=sys.stderr)
        return STAGE_FAILED
    published.reset(out_dir)
    folders = [out_dir / p.parent.relative_to(tree) for p in files]
    if reparse_files(files, jobs=jobs, repo_head=repo_head, out_dir=folders):
        return STAGE_FAILED
    from stages.lib.provenance import write_provenance

    write_provenance(out_dir, "reparse", {"inputs": [p.relative_to(tree).as_posix() for p in files],
                                          "repo_head": repo_head, "snapshot": published.status(tree)})
    return 0


if __name__ == "__main__":
    exit_stage(main)
