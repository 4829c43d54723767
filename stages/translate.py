"""translate: condition 5, the condition-2 files with everything else translatable translated too.

    python -m stages.translate --lang ur --tier 5k      # dvc.yaml: translate-lead@ur-5k (every row)
    python -m stages.translate --lang zh --tier 5k      # dvc.yaml: translate@zh-5k (ur's shipped idx only)

Reads ``data/condition-1-en-<tier>/`` (the rows: every idx is accounted for),
``data/condition-2-<lang>-<tier>/`` (reserved words already mapped from the pack: the
original's "Legesher first") and, for the languages after ``translate.lead_lang`` when
``translate.allowlist_from`` is set, the lead's ``ledger.jsonl`` (the original's
``--idx-allowlist``). User identifiers, comments, docstrings and string literals go to
the backend as JSON segments (``stages/lib/translation/prompt.py``); ``self``/``cls``
come from the pack.

Writes ``data/condition-5-<lang>-<tier>/`` (train/validation parquet with condition 1's
idx and file_path; ``ledger.jsonl``, one row per idx and split; ``provenance.json``),
``metrics/data/translate-<lang>-<tier>.json``, new answers into the response cache
``data/translate-cache/<lang>-<tier>/`` and, outside DVC, the run's timings and cache
hits in ``logs/translate-<lang>-<tier>.jsonl`` (they differ between a first run and a
cached rerun, so they stay out of every output that must rebuild byte for byte).

A file ships when its translation keeps the token skeleton and parses with the pack's
words reversed; ``translate.keep_invalid: true`` also ships the rest, as the original
did. If a call still fails after its retries (429s, 5xx, timeouts), or
``translate.max_connection_failures`` calls in a row find no server, the stage stops
with exit 4 (3 for a rejected key), names a file that failed and the error, and writes
no data. If fewer than ``translate.min_success_rate`` of a split's attempted files got
usable answers (a broken server, a wrong model), it stops with exit 5, naming the
reasons, and writes no data. Either way what was answered usably is in the cache, so
running it again resumes without paying twice. Run by hand, the outputs of an earlier
run stay as they were; under ``dvc repro`` DVC has removed them before the stage
started, and ``dvc checkout <stage>`` brings the last committed ones back.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stages.lib.errors import exit_stage
from stages.lib.langpacks import LanguagePack, load_pack
from stages.lib.params import ParamsError, Translate, load_params
from stages.lib.progress import progress, stage_logger
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_jsonl, read_rows, split_path, write_jsonl, write_parquet
from stages.lib.translation import prompt, segments
from stages.lib.translation.backends import BackendError, Caller, make_backend, public_url, redact, translator_label
from stages.lib.translation.cache import ResponseCache


# How the answers were fetched, not what they are (the cache makes the bytes the same):
# kept out of the data files' footers and out of dvc.yaml's params, so tuning pacing
# or pointing at another server of the same model re-runs nothing.
OPERATIONAL = ("base_url", "min_call_gap_s", "concurrency", "timeout_s", "max_retries", "backoff_s", "max_backoff_s",
               "langs", "tiers")
# Whether a run may ship at all, never what it holds: recorded nowhere, since a run that ships passed them.
GATES = ("min_success_rate", "max_connection_failures")


@dataclass
class Outcome:
    """One file's result: the ledger row, the text when it ships, and the uncached log."""

    ledger: dict
    text: str | None = None
    log: dict = field(default_factory=dict)
    error: BackendError | None = None


@dataclass(frozen=True)
class Job:
    split: str
    row: dict  # condition 1's row: idx, file_path, code (English), license
    code2: str | None  # condition 2's text, None when transpile left the file out
    allowed: bool


def _ledger(job: Job, lang: str, label: str, **fields) -> dict:
    base = {
        "split": job.split, "idx": job.row["idx"], "file_path": job.row["file_path"], "lang": lang,
        "translator": label, "status": "failed", "reason": "", "attempts": 0, "requests": 0, "segments": 0,
        "ast": "", "skeleton": "", "shipped": False, "input_chars": len(job.row["code"]), "output_chars": 0,
        "stripped_labeled_mappings": 0,
    }
    return {**base, **fields}


def _ask_chunk(caller: Caller, cfg: Translate, lang: str, plan, chunk, log: Counter) -> tuple[dict | None, int, list[str]]:
    """Answers for one chunk, asked up to ``cfg.attempts`` times; (answers or None, attempts, problems)."""
    problems: list[str] = []
    for attempt in range(1, cfg.attempts + 1):
        answer = caller.ask(prompt.messages(lang, chunk, attempt, cfg.attempts, problems))
        log["cache_hits" if answer.cached else "calls"] += 1
        log["transport_retries"] += answer.retries
        answers, problems = prompt.parse_answer(answer.reply.text, chunk, answer.reply.finish_reason)
        problems += [p for p in (segments.check_answer(plan, k, v) for k, v in answers.items()) if p]
        if not problems:
            caller.keep(answer)
            return answers, attempt, []
    return None, cfg.attempts, problems


def translate_file(job: Job, caller: Caller, cfg: Translate, pack: LanguagePack, scope: str, label: str) -> Outcome:
    lang = pack.lang
    if not job.allowed:
        return Outcome(_ledger(job, lang, label, status="not_in_allowlist"))
    if job.code2 is None:
        return Outcome(_ledger(job, lang, label, reason="not_in_condition_2"))
    try:
        plan = segments.plan(job.row["code"], job.code2, pack)
    except segments.SegmentError as err:
        return Outcome(_ledger(job, lang, label, reason=f"segmentation: {err}"))
    log: Counter = Counter()
    answers: dict[str, str] = {}
    attempts = 0
    chunks = prompt.chunks(plan.segments, cfg.chunk_chars, cfg.chunk_segments)
    try:
        for chunk in chunks:
            got, used, problems = _ask_chunk(caller, cfg, lang, plan, chunk, log)
            attempts = max(attempts, used)
            if got is None:
                reason = "unusable_answer: " + "; ".join(problems)[:300]
                row = _ledger(job, lang, label, reason=reason, attempts=attempts, segments=len(plan.segments))
                return Outcome(row, log=dict(log))
            answers.update(got)
    except BackendError as err:
        return Outcome(_ledger(job, lang, label, reason="backend_error"), log=dict(log), error=err)
    text, stripped = segments.apply(plan, answers, pack)
    skeleton, ast_result = segments.validate(plan, text, pack, scope)
    valid = skeleton is None and ast_result == "pass"
    shipped = valid or cfg.keep_invalid
    row = _ledger(
        job, lang, label, status="ok" if valid else "failed", reason="" if valid else "invalid_translation",
        attempts=attempts, requests=len(chunks), segments=len(plan.segments), ast=ast_result,
        skeleton="pass" if skeleton is None else f"fail: {skeleton}", shipped=shipped,
        output_chars=len(text), stripped_labeled_mappings=stripped,
    )
    return Outcome(row, text if shipped else None, dict(log))


def read_allowlist(path: Path) -> dict[str, set[int]]:
    """The lead language's shipped idx per split, from its ledger (a DVC dep)."""
    allowed: dict[str, set[int]] = {split: set() for split in SPLITS}
    for row in read_jsonl(path):
        if row.get("shipped"):
            allowed[row["split"]].add(row["idx"])
    return allowed


def _jobs(split: str, source: list[dict], cond2: list[dict], allowed: set[int] | None) -> list[Job]:
    by_idx = {row["idx"]: row["code"] for row in cond2}
    return [Job(split, row, by_idx.get(row["idx"]), allowed is None or row["idx"] in allowed) for row in source]


def _stats(rows: list[dict]) -> dict:
    counts = Counter(row["status"] for row in rows)
    attempted = [row for row in rows if row["status"] != "not_in_allowlist"]
    return {
        "rows": len(rows), "attempted": len(attempted), "ok": counts["ok"], "failed": counts["failed"],
        "not_in_allowlist": counts["not_in_allowlist"], "shipped": sum(row["shipped"] for row in rows),
        "ast_pass": sum(row["ast"] == "pass" for row in rows),
        "ast_fail": sum(row["ast"].startswith("fail") for row in rows),
        "failed_by_reason": dict(sorted(Counter(row["reason"].split(":")[0] for row in rows if row["status"] == "failed").items())),
        "requests": sum(row["requests"] for row in rows),
        "stripped_labeled_mappings": sum(row["stripped_labeled_mappings"] for row in rows),
        "input_chars": sum(row["input_chars"] for row in attempted),
        "output_chars": sum(row["output_chars"] for row in rows if row["shipped"]),
    }


def _extra(cfg: Translate, pack: LanguagePack, label: str) -> dict:
    extra = {"translator": label, "prompt": prompt.prompt_record(), "pack": pack.name, "pack_sha256": pack.sha256}
    if cfg.backend == "offline":
        from stages.lib.translation.offline import load_glossary

        extra["glossary_sha256"] = load_glossary(pack.lang)[1]
    else:
        sdk = "cohere" if cfg.backend == "cohere" else "openai"
        extra["sdk"] = {sdk: importlib.metadata.version(sdk)}
    return extra


def _fail(stage: str, message: str, secrets: tuple[str, ...] = (), code: int = 2) -> int:
    stage_logger(stage).error("%s", redact(message, secrets))
    return code


def _too_few(jobs: list[Job], outcomes: list[Outcome], floor: float) -> str | None:
    """Why the run is not worth shipping: a split where too few attempted files got usable answers."""
    for split in SPLITS:
        rows = [o.ledger for job, o in zip(jobs, outcomes) if job.split == split and o.ledger["status"] != "not_in_allowlist"]
        failed = [row for row in rows if row["status"] != "ok" and row["reason"] != "invalid_translation"]
        usable = len(rows) - len(failed)  # answers were put in, whether or not the result ships
        if rows and usable < floor * len(rows):
            reasons = Counter(row["reason"].split(":")[0] for row in failed)
            example = f"idx {failed[0]['idx']} ({failed[0]['file_path']}): {failed[0]['reason'][:200]}"
            return (f"{split}: {usable} of {len(rows)} attempted files got usable answers, below "
                    f"translate.min_success_rate {floor} ({', '.join(f'{k} {n}' for k, n in sorted(reasons.items()))}; "
                    f"e.g. {example})")
    return None


def run_stage(args) -> int:
    try:
        params = load_params(args.params)
    except ParamsError as error:
        return _fail("translate", str(error))
    cfg = params.translate
    if args.lang not in cfg.all_langs() or args.tier not in cfg.tiers:
        return _fail("translate", f"{args.params}: translate: {args.lang}-{args.tier} is not a cell of translate.lead_lang/langs x tiers")
    cell = f"{args.lang}-{args.tier}"
    try:
        backend = make_backend(cfg)
    except BackendError as error:
        return _fail(f"translate@{cell}", f"{error}")
    secrets = tuple(getattr(backend, "secrets", ()))
    pack = load_pack(params.transpile.packs, args.lang)
    data = Path(args.data)
    allowlist = None
    if args.lang != cfg.lead_lang and cfg.allowlist_from:
        lead_ledger = data / f"condition-5-{cfg.allowlist_from}-{args.tier}" / "ledger.jsonl"
        if not lead_ledger.exists():
            return _fail(f"translate@{cell}", f"{lead_ledger}: missing; translate {cfg.allowlist_from} first (translate-lead)")
        allowlist = read_allowlist(lead_ledger)
    jobs: list[Job] = []
    try:
        for split in SPLITS:
            source = read_rows(split_path(data / f"condition-1-en-{args.tier}", split))
            cond2 = read_rows(split_path(data / f"condition-2-{args.lang}-{args.tier}", split), ["idx", "code"])
            jobs += _jobs(split, source, cond2, None if allowlist is None else allowlist[split])
    except (FileNotFoundError, ValueError) as error:
        return _fail(f"translate@{cell}", f"{error}")

    cache = ResponseCache(Path(args.cache) / cell)
    cache.clean_partials()
    caller = Caller(backend, cfg, cache)
    label = translator_label(cfg)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
        answered = pool.map(lambda job: _timed(job, caller, cfg, pack, params.transpile.scope, label), jobs)
        outcomes = list(progress(answered, desc=f"translate@{cell}", total=len(jobs), unit="file"))
    stopped = [(job, o.error) for job, o in zip(jobs, outcomes) if o.error is not None]
    _write_log(Path(args.logs) / f"translate-{cell}.jsonl", outcomes, time.monotonic() - started)
    if stopped:
        job, shown = next(((j, e) for j, e in stopped if e.fatal), stopped[0])
        where = f"{job.split} idx {job.row['idx']} ({job.row['file_path']})"
        return _fail(
            f"translate@{cell}", f"{len(stopped)} files stopped on backend errors, e.g. {where}: {shown}. Nothing was "
            f"written; every answer received is cached in {cache.root}, so running the stage again resumes.",
            secrets, shown.exit_code,
        )
    problem = _too_few(jobs, outcomes, cfg.min_success_rate)
    if problem:
        return _fail(f"translate@{cell}", f"{problem}. Nothing was written; the usable answers are cached in {cache.root}.",
                     secrets, 5)

    out = data / f"condition-5-{args.lang}-{args.tier}"
    dump = cfg.model_dump(mode="json")
    resolved = {**{k: v for k, v in dump.items() if k not in OPERATIONAL + GATES}, "lang": args.lang, "tier": args.tier,
                "packs": params.transpile.packs, "scope": params.transpile.scope}
    extra = _extra(cfg, pack, label)
    provenance = content_provenance("translate", resolved, extra)
    stats = {}
    for split in SPLITS:
        chosen = [(job, o) for job, o in zip(jobs, outcomes) if job.split == split]
        rows = [{**job.row, "code": o.text, "code_en": job.row["code"], "language": args.lang} for job, o in chosen if o.text is not None]
        write_parquet(split_path(out, split), rows, CONDITION_SCHEMA, provenance)
        stats[split] = _stats([o.ledger for _, o in chosen])
    write_jsonl(out / "ledger.jsonl", [o.ledger for o in outcomes])
    operational = {k: public_url(dump[k]) if k == "base_url" else dump[k] for k in OPERATIONAL}
    write_provenance(out, "translate", resolved, {**extra, "operational": operational})
    write_json(Path(args.metrics) / f"translate-{cell}.json", {"translate": {cell: {"translator": label, **stats}}})
    summary = ", ".join(f"{s} {stats[s]['shipped']}/{stats[s]['rows']}" for s in SPLITS)
    stage_logger(f"translate@{cell}").info(f"({label}, prompt {prompt.PROMPT_VERSION}): shipped {summary} -> {out}")
    return 0


def _timed(job: Job, caller: Caller, cfg: Translate, pack: LanguagePack, scope: str, label: str) -> Outcome:
    started = time.monotonic()
    outcome = translate_file(job, caller, cfg, pack, scope, label)
    outcome.log = {"split": job.split, "idx": job.row["idx"], "seconds": round(time.monotonic() - started, 3),
                   "cached": outcome.log.get("calls", 0) == 0 and outcome.log.get("cache_hits", 0) > 0, **outcome.log}
    return outcome


def _write_log(path: Path, outcomes: list[Outcome], seconds: float) -> None:
    """Timings and cache hits: useful, never identical twice, so outside every DVC output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({"total_seconds": round(seconds, 3), "files": len(outcomes)}) + "\n")
        for outcome in outcomes:
            handle.write(json.dumps(outcome.log, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", required=True)
    parser.add_argument("--tier", required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data")
    parser.add_argument("--metrics", default="metrics/data")
    parser.add_argument("--cache", default="data/translate-cache", help="response cache root (one folder per cell)")
    parser.add_argument("--logs", default="logs", help="uncached run logs (timings, cache hits)")
    return run_stage(parser.parse_args(argv))


if __name__ == "__main__":
    exit_stage(main)
