"""The paper-scale source: a Hugging Face dataset streamed at a pinned revision.

``iter_hub`` yields one :class:`SourceFile` per dataset row, in stream order, with the
fields resolved by the original's ``get_first`` lists (the first key whose value is not ``None``/``""``).

Contents come from one of two places:
- ``content: inline`` (The Stack v1): the row's own content column, as UTF-8 bytes;
- ``content: s3`` (The Stack v2): the row's ``blob_id`` fetched anonymously from
  ``s3://{s3_bucket}/{s3_prefix}{blob_id}`` and gunzipped (raw bytes when the object is
  not gzip). Fetches run on ``fetch_workers`` threads, one S3 client each, with at most
  ``2 * fetch_workers`` in flight in a FIFO, so records come out in source order.

A failed fetch yields ``SourceFile(data=None, fetch_error=...)``: the filter counts it as
``fetch_failed`` and ``record_index`` stays the true 1-based stream position, which is
what a ``skip(last_index)`` resume needs. ``HubSource.failed_fetch_mode: original``
reproduces the original, which dropped such records silently so that later indices drifted.

``source.dataset`` may also be a local folder laid out like the Hub repository. A local
folder has no revisions and ``datasets`` silently ignores ``revision=`` for one, so the
revision is passed only for Hub ids; for a folder it is only a label (DVC hashes the
folder's content instead) and the records say ``local:<folder>`` as their source.

A dataset that cannot be reached (offline, ``HF_HUB_OFFLINE=1`` without it in the cache, the
network gone mid-stream) is a :class:`SourceError` naming the dataset and revision.

The HF token is handed to ``datasets`` and nowhere else: never logged, never recorded.
"""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator

from stages.lib.params import HubSource
from stages.lib.sources import SourceFile
from stages.lib.sources.installed import SourceError

# The original's get_first lists, in priority order.
CONTENT_FIELDS = ("content", "code", "text")
LICENSE_FIELDS = (
    "detected_licenses",
    "gha_license_id",
    "max_stars_repo_licenses",
    "license",
    "licenses",
    "max_stars_repo_license",
)
STARS_FIELDS = ("star_events_count", "max_stars_count", "stars", "star_count")
REPO_FIELDS = ("max_stars_repo_name", "repo_name", "repository_name")
PATH_FIELDS = ("max_stars_repo_path", "path", "file_path")


def get_first(row: dict, keys: tuple[str, ...], default: object = None) -> object:
    """The value of the first key that is neither missing, ``None`` nor ``""``."""
    for key in keys:
        value = row.get(key)
        if value is not None and value != "":
            return value
    return default


def to_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def is_local(source: HubSource) -> bool:
    """The same test ``datasets`` applies: an existing folder wins over a Hub id."""
    return os.path.isdir(source.dataset)


def load_rows(source: HubSource, token: str | None) -> Iterator[dict]:
    import datasets  # heavy import, only needed at paper scale

    return iter(
        datasets.load_dataset(
            source.dataset,
            name=source.config,
            data_dir=source.data_dir,
            split=source.split,
            streaming=True,
            revision=None if is_local(source) else source.revision,
            token=token,
        )
    )


def gunzip_or_raw(blob: bytes) -> bytes:
    """Software Heritage stores contents gzipped; anything that is not gzip is kept as is."""
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):
        return blob


def s3_fetcher(source: HubSource) -> Callable[[str], tuple[bytes | None, str | None]]:
    """A thread-safe ``blob_id -> (bytes, None) | (None, error)``, one anonymous client per thread."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    local = threading.local()

    def fetch(blob_id: str) -> tuple[bytes | None, str | None]:
        if not hasattr(local, "client"):
            local.client = boto3.session.Session().client(
                "s3", config=Config(signature_version=UNSIGNED), endpoint_url=source.s3_endpoint_url
            )
        try:
            response = local.client.get_object(Bucket=source.s3_bucket, Key=f"{source.s3_prefix}{blob_id}")
            return gunzip_or_raw(response["Body"].read()), None
        except (BotoCoreError, ClientError) as error:
            return None, f"s3://{source.s3_bucket}/{source.s3_prefix}{blob_id}: {type(error).__name__}: {error}"

    return fetch


def inline_content(row: dict) -> bytes:
    content = get_first(row, CONTENT_FIELDS, "")
    return content if isinstance(content, bytes) else str(content).encode("utf-8")


def hydrated(rows: Iterator[dict], source: HubSource) -> Iterator[tuple[dict, bytes | None, str | None]]:
    """Rows with their contents, in source order, fetched ``fetch_workers`` at a time.

    A FIFO of futures refilled one for one (not ``Executor.map``, which would submit the
    whole stream at once). Rows without a ``blob_id`` fall back to their inline content,
    as the original let them pass through unhydrated.
    """
    fetch = s3_fetcher(source)

    def work(row: dict) -> tuple[dict, bytes | None, str | None]:
        blob_id = row.get("blob_id")
        if not blob_id:
            return row, inline_content(row), None
        return (row, *fetch(str(blob_id)))

    pool = ThreadPoolExecutor(max_workers=source.fetch_workers, thread_name_prefix="s3-fetch")
    in_flight: deque[Future] = deque()
    try:
        for row in rows:
            in_flight.append(pool.submit(work, row))
            if len(in_flight) >= 2 * source.fetch_workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        # the caller may stop early (a limit): cancel queued fetches nobody will read; running ones finish
        pool.shutdown(wait=True, cancel_futures=True)


def to_source_file(
    row: dict, index: int, data: bytes | None, error: str | None, source: HubSource, origin: str
) -> SourceFile:
    fetched = source.content == "s3" and bool(row.get("blob_id"))
    return SourceFile(
        record_index=index,
        repo_name=str(get_first(row, REPO_FIELDS, "unknown-repo")),
        path=str(get_first(row, PATH_FIELDS, "unknown.py")),
        data=data,
        license_fields={key: row[key] for key in LICENSE_FIELDS if key in row},
        stars=to_int(get_first(row, STARS_FIELDS)),
        is_generated=row.get("is_generated"),
        # fetched v2 bytes are in the row's src_encoding; inline content is encoded by us, as UTF-8
        encoding=str(row.get("src_encoding") or "utf-8") if fetched else "utf-8",
        fetch_error=error,
        source=origin,
        revision=source.revision,
    )


def iter_hub(source: HubSource, token: str | None = None) -> Iterator[SourceFile]:
    """Every row of the dataset as a SourceFile, in stream order; the caller applies any limit."""
    try:
        yield from _iter_hub(source, token)
    except OSError as error:  # datasets' ConnectionError when offline or unreachable, a read cut mid-stream
        offline = " (HF_HUB_OFFLINE is set: only a dataset already in the Hugging Face cache can be read)" if \
            os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0") else ""
        raise SourceError(f"{source.dataset} at revision {source.revision}: cannot be read: {error}{offline}") from None


def _iter_hub(source: HubSource, token: str | None) -> Iterator[SourceFile]:
    rows = load_rows(source, token)
    origin = f"{'local' if is_local(source) else 'hub'}:{source.dataset}"
    if source.content == "inline":
        records = ((row, inline_content(row), None) for row in rows)
    else:
        records = hydrated(rows, source)
    index = 0
    for row, data, error in records:
        if data is None and source.failed_fetch_mode == "original":
            continue  # the original: not yielded, not counted, later indices drift
        index += 1
        yield to_source_file(row, index, data, error, source, origin)
