"""fetch: stream one source of Python files through the original's filter chain.

    python -m stages.fetch --source code          # dvc.yaml: fetch@code

Reads ``fetch.sources.<source>`` and ``fetch.filters`` from params.yaml. At smoke scale
the source is the files of pinned installed distributions; at paper scale it is
``bigcode/the-stack-v2-dedup`` (or The Stack v1 for Phase 2) streamed at a pinned
revision. Writes, under ``data/raw/<source>/``:

- ``files.parquet``: one row per accepted file, keyed by the original's ``file_path``
  identity (``{record_index:09d}_{repo}_{stem}_{sha256[:12]}.py``);
- ``manifest.jsonl``: path, sha256, size, source, revision and licence of each accepted file;
- ``ledger.jsonl``: every rejected record with its reason, so nothing disappears silently;
- ``near_duplicate_clusters.jsonl`` and ``provenance.json``;

and ``metrics/data/fetch-<source>.json``: the counters per reason (a DVC metric).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator

from stages.lib.errors import exit_stage
from stages.lib.filters import Accepted, FilterChain
from stages.lib.params import UNPINNED, HubSource, InstalledSource, ParamsError, load_params
from stages.lib.paths import safe_join
from stages.lib.progress import progress, stage_logger
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.sources import SourceFile
from stages.lib.sources.installed import SourceError, iter_installed
from stages.lib.tables import POOL_SCHEMA, write_jsonl, write_parquet




def iter_source(key: str, source: InstalledSource | HubSource) -> Iterator[SourceFile]:
    if isinstance(source, InstalledSource):
        return iter_installed(source, key)
    from stages.lib.sources.hub import iter_hub  # imported lazily: only the paper path needs it

    return iter_hub(source, token=os.environ.get("HF_TOKEN"))


def run_filters(files: Iterator[SourceFile], chain: FilterChain, limit: int | None) -> tuple[list[Accepted], list[dict]]:
    accepted: list[Accepted] = []
    ledger: list[dict] = []
    for file in files:
        verdict = chain.consider(file)
        if isinstance(verdict, Accepted):
            accepted.append(verdict)
            if limit is not None and len(accepted) >= limit:
                break
        else:
            ledger.append(
                {
                    "record_index": file.record_index,
                    "repo_name": file.repo_name,
                    "path": file.path,
                    "reason": verdict.reason,
                    "detail": verdict.detail,
                }
            )
    return accepted, ledger


def pool_row(item: Accepted, source: str, revision: str) -> dict:
    return {
        "file_path": item.file_path,
        "code": item.text,
        "sha256": item.sha256,
        "size": item.size,
        "line_count": item.line_count,
        "license": item.license,
        "stars": item.stars,
        "repo_name": item.repo_name,
        "path": item.path,
        "record_index": item.record_index,
        "source": source,
        "revision": revision,
    }


def source_label(key: str, source: InstalledSource | HubSource) -> tuple[str, str]:
    """(source, revision) as recorded for every file of the pool."""
    if isinstance(source, InstalledSource):
        return f"installed:{key}", ",".join(f"{n}=={v}" for n, v in source.distributions.items())
    return f"hub:{source.dataset}", source.revision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="a key of fetch.sources in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/raw", help="parent folder of data/raw/<source>/")
    parser.add_argument("--metrics", default="metrics/data", help="folder of the per-reason counters")
    args = parser.parse_args(argv)
    log = stage_logger(f"fetch@{args.source}")

    try:
        params = load_params(args.params)
    except ParamsError as error:
        log.error("%s", error)
        return 2
    if args.source not in params.fetch.sources:
        log.error("%s: fetch.sources.%s: no such source", args.params, args.source)
        return 2
    source = params.fetch.sources[args.source]
    if isinstance(source, HubSource) and source.revision == UNPINNED:
        log.error(
            f"{args.params}: fetch.sources.{args.source}.revision: still {UNPINNED!r}; set the commit of "
            f"{source.dataset} you stream (the original pinned none, so its stream cannot be re-read)"
        )
        return 2
    chain = FilterChain(params.fetch.filters)
    try:
        files = progress(iter_source(args.source, source), desc=f"fetch@{args.source}", unit="file")
        accepted, ledger = run_filters(files, chain, source.limit)
    except SourceError as error:
        log.error("%s", error)
        return 2

    label, revision = source_label(args.source, source)
    resolved = {"source": source.model_dump(mode="json"), "filters": params.fetch.filters.model_dump(mode="json")}
    provenance = content_provenance("fetch", resolved, {"source_key": args.source})
    out = safe_join(args.out, args.source)
    rows = [pool_row(item, label, revision) for item in accepted]
    write_parquet(out / "files.parquet", rows, POOL_SCHEMA, provenance)
    write_jsonl(
        out / "manifest.jsonl",
        (
            {k: row[k] for k in ("file_path", "sha256", "size", "license", "source", "revision", "repo_name", "path")}
            for row in rows
        ),
    )
    write_jsonl(out / "ledger.jsonl", ledger)
    write_jsonl(out / "near_duplicate_clusters.jsonl", chain.near_duplicate_clusters)
    write_provenance(out, "fetch", resolved, {"source_key": args.source})
    stats = chain.stats()
    write_json(Path(args.metrics) / f"fetch-{args.source}.json", {"fetch": {args.source: stats}})
    log.info("%d files kept, %d rejected -> %s", len(rows), len(ledger), out)
    return 0


if __name__ == "__main__":
    exit_stage(main)
