"""transpile: condition 2, Python's reserved words translated into one language.

    python -m stages.transpile --lang zh --tier 5k          # dvc.yaml: transpile@zh-5k
    python -m stages.transpile --lang zh --stdin < f.py     # transpiled source on stdout
    python -m stages.transpile --lang zh --stdin --reverse  # and back (stdin: at most --max-bytes, 1 MiB)

Reads ``data/condition-1-en-<tier>/`` and the pack ``stages/lib/langpacks/<packs>/<lang>.yaml``;
writes ``data/condition-2-<lang>-<tier>/`` with the same splits, ``idx`` and
``file_path`` as condition 1 (rows in idx order), ``code`` transpiled and ``code_en``
the English original. Files that cannot be transpiled are left out and listed with
their reason in ``ledger.jsonl``; ``metrics/data/transpile-<lang>-<tier>.json`` counts
them per reason. Size gate and binary check as ``batch_transpile.py`` (10 B - 1 MiB,
no NUL); unlike it, newlines are kept as they are, so ``code_en`` and ``code`` differ
only in translated words (the original normalised newlines before translating but
read ``code_en`` raw, so CRLF files also differed in line endings).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, Transpile, load_params
from stages.lib.paths import safe_join
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_rows, split_path, write_jsonl, write_parquet
from stages.lib.langpacks import PackError, pack_path
from stages.lib.transpiler import LanguagePack, TranspileError, load_pack, reverse, transpile, transpile_batch


# every counter of the metrics file, present even when zero, so that `dvc metrics diff`
# between phases lines the same keys up
COUNTERS = ("ok", "too_small", "too_large", "binary", "syntax_error", "parse_error", "roundtrip_mismatch",
            "internal_error", "roundtrip_inexact_kept", "translated_tokens")


def gate(code: str, cfg: Transpile) -> str | None:
    """The pre-translation checks of batch_transpile.py; the reason a file is skipped, or None."""
    size = len(code.encode("utf-8"))
    if size < cfg.min_bytes:
        return "too_small"
    if size > cfg.max_bytes:
        return "too_large"
    if "\x00" in code:
        return "binary"
    return None


def transpile_split(rows: list[dict], pack: LanguagePack, cfg: Transpile, workers: int) -> tuple[list[dict], list[dict], Counter]:
    reasons: Counter = Counter({name: 0 for name in COUNTERS})
    candidates = []
    ledger = []
    for row in rows:
        reason = gate(row["code"], cfg)
        if reason:
            reasons[reason] += 1
            ledger.append({"idx": row["idx"], "file_path": row["file_path"], "reason": reason, "detail": ""})
        else:
            candidates.append(row)
    results = transpile_batch(
        [row["code"] for row in candidates], pack, scope=cfg.scope, verify_roundtrip=cfg.verify_roundtrip, workers=workers
    )
    kept = []
    for row, result in zip(candidates, results):
        if not result.ok:
            reasons[result.reason] += 1
            ledger.append({"idx": row["idx"], "file_path": row["file_path"], "reason": result.reason, "detail": result.detail or ""})
            continue
        reasons["ok"] += 1
        reasons["translated_tokens"] += result.n_translated
        if result.detail:  # scope-unaware mode keeps files whose round trip is not exact, as the original did
            reasons["roundtrip_inexact_kept"] += 1
        kept.append({**row, "code": result.text, "code_en": row["code"], "language": pack.lang})
    return kept, sorted(ledger, key=lambda r: r["idx"]), reasons


def run_stage(args, params_path: str) -> int:
    try:
        params = load_params(params_path)
    except ParamsError as error:
        print(error, file=sys.stderr)
        return 2
    cfg = params.transpile
    for name, value, allowed in (("langs", args.lang, cfg.langs), ("tiers", args.tier, cfg.tiers)):
        if value not in allowed:
            print(f"{params_path}: transpile.{name}: {value!r} is not listed", file=sys.stderr)
            return 2
    pack = _pack(cfg.packs, args.lang)
    if pack is None:
        return 2
    source_dir = Path(args.data) / f"condition-1-en-{args.tier}"
    out = safe_join(args.data, f"condition-2-{args.lang}-{args.tier}")
    resolved = {**cfg.model_dump(mode="json"), "lang": args.lang, "tier": args.tier}
    extra = {"pack": pack.name, "pack_sha256": pack.sha256}
    provenance = content_provenance("transpile", resolved, extra)
    stats: dict[str, dict] = {}
    ledger: list[dict] = []
    for split in SPLITS:
        try:
            rows = read_rows(split_path(source_dir, split))
        except (FileNotFoundError, ValueError) as error:
            print(f"transpile@{args.lang}-{args.tier}: {error}", file=sys.stderr)
            return 2
        kept, split_ledger, reasons = transpile_split(rows, pack, cfg, args.workers)
        write_parquet(split_path(out, split), kept, CONDITION_SCHEMA, provenance)
        ledger.extend({"split": split, **entry} for entry in split_ledger)
        stats[split] = {"input": len(rows), "kept": len(kept), **dict(sorted(reasons.items()))}
    write_jsonl(out / "ledger.jsonl", ledger)
    write_provenance(out, "transpile", resolved, extra)
    write_json(
        Path(args.metrics) / f"transpile-{args.lang}-{args.tier}.json",
        {"transpile": {f"{args.lang}-{args.tier}": stats}},
    )
    summary = ", ".join(f"{s} {stats[s]['kept']}/{stats[s]['input']}" for s in SPLITS)
    print(f"transpile@{args.lang}-{args.tier} ({pack.name}, scope {cfg.scope}): {summary} -> {out}")
    return 0


def _pack(packs: str, lang: str) -> LanguagePack | None:
    """The pack, or None after one line naming what is wrong with it (and the packs there are)."""
    try:
        return load_pack(packs, lang)
    except PackError as error:
        there = ", ".join(sorted(p.stem for p in pack_path(packs, lang).parent.glob("*.yaml"))) or "none"
        print(f"transpile: --lang {lang} --packs {packs}: {error} (packs there: {there})", file=sys.stderr)
        return None


def run_stdin(args) -> int:
    """The plain CLI: one source on stdin, its (reverse) transpilation on stdout."""
    pack = _pack(args.packs, args.lang)
    if pack is None:
        return 2
    if args.max_bytes is None:  # the stage's cap, from the params file (the profiles hold the value)
        try:
            args.max_bytes = load_params(args.params).transpile.max_bytes
        except ParamsError as error:
            print(f"{error} (or pass --max-bytes)", file=sys.stderr)
            return 2
    data = sys.stdin.buffer.read(args.max_bytes + 1)  # never more than the cap in memory
    if len(data) > args.max_bytes:
        print(f"<stdin>: too_large: more than --max-bytes {args.max_bytes} bytes (the stage's transpile.max_bytes)",
              file=sys.stderr)
        return 1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        print(f"<stdin>: undecodable: not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})", file=sys.stderr)
        return 1
    try:
        result = (reverse if args.reverse else transpile)(text, pack, scope=args.scope)
    except TranspileError as error:
        print(f"<stdin>: {error.reason}: {error}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(result.encode("utf-8"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", required=True)
    parser.add_argument("--tier", help="a key of subset.tiers (stage mode)")
    parser.add_argument("--stdin", action="store_true", help="transpile stdin to stdout instead of running the stage")
    parser.add_argument("--reverse", action="store_true", help="with --stdin: from the language back to English")
    parser.add_argument("--packs", default="phase3", help="with --stdin: the pack folder")
    parser.add_argument("--scope", default="aware", choices=["aware", "unaware"], help="with --stdin")
    parser.add_argument("--max-bytes", type=int,
                        help="with --stdin: the largest input read; default: transpile.max_bytes of --params")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data")
    parser.add_argument("--metrics", default="metrics/data")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes; output does not depend on it")
    args = parser.parse_args(argv)
    if args.stdin:
        return run_stdin(args)
    if args.reverse or not args.tier:
        parser.error("stage mode needs --tier (and no --reverse); use --stdin for the plain CLI")
    return run_stage(args, args.params)


if __name__ == "__main__":
    exit_stage(main)
