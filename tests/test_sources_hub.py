"""The Hub source against a local folder in the Hub's layout and a local S3 stand-in (moto)."""

from __future__ import annotations

import gzip
import itertools
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the Hub

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.lib.params import HubSource
from stages.lib.sources import hub
from stages.lib.sources.hub import get_first, gunzip_or_raw, iter_hub, to_int
from tests.conftest import profile_values
from tests.s3_server import s3_server

BUCKET = "swh-test"
ROWS = 24
MISSING = 5  # the row whose blob is not in the bucket
RAW = 7  # the row whose blob is stored without gzip

V2_CARD = """---
configs:
- config_name: Python
  data_files:
  - split: train
    path: data/Python/train-*
---
# a stand-in for bigcode/the-stack-v2-dedup
"""


def body(i: int) -> str:
    return f"def f{i}():\n    return {i}\n"


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture(scope="module")
def s3_url():
    with s3_server(BUCKET) as (url, client):
        for i in range(1, ROWS + 1):
            if i != MISSING:
                data = body(i).encode("utf-8")
                blob = data if i == RAW else gzip.compress(data)
                # public, like the Software Heritage bucket: the source reads anonymously
                client.put_object(Bucket=BUCKET, Key=f"content/blob{i}", Body=blob, ACL="public-read")
        yield url


@pytest.fixture(scope="module")
def v2_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("the-stack-v2-dedup")
    (root / "README.md").write_text(V2_CARD, encoding="utf-8")
    rows = [
        {
            "blob_id": f"blob{i}",
            "repo_name": f"owner/repo{i}",
            "path": f"/pkg/mod{i}.py",
            "detected_licenses": [] if i == 1 else ["MIT"],
            "gha_license_id": "Apache-2.0" if i == 1 else None,
            "star_events_count": i,
            "src_encoding": "UTF-8",
            "is_generated": i == 2,
            "length_bytes": len(body(i)),
        }
        for i in range(1, ROWS + 1)
    ]
    write_parquet(root / "data" / "Python" / "train-00000-of-00001.parquet", rows)
    return root


@pytest.fixture(scope="module")
def v1_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("the-stack")
    rows = [
        {
            "content": "def ü():\n    return 'é'\n",
            "max_stars_repo_name": "octo/stars",
            "repository_name": "octo/plain",
            "max_stars_repo_path": "src/a.py",
            "path": "a.py",
            "max_stars_repo_licenses": ["MIT"],
            "licenses": ["GPL-3.0"],
            "max_stars_count": 30.0,
            "size": 27,
        },
        {
            "content": "",
            "max_stars_repo_name": None,
            "repository_name": "octo/plain",
            "max_stars_repo_path": None,
            "path": "b.py",
            "max_stars_repo_licenses": [],
            "licenses": ["MIT"],
            "max_stars_count": None,
            "size": 0,
        },
    ]
    write_parquet(root / "data" / "python" / "train-00000-of-00001.parquet", rows)
    return root


def v2_source(folder: Path, url: str, **fields) -> HubSource:
    """The paper profile's The Stack v2 source (content s3), read from ``folder`` and the local bucket."""
    changed = dict(dataset=str(folder), revision="0123abcd", s3_bucket=BUCKET, s3_endpoint_url=url, fetch_workers=4)
    return HubSource(**profile_values("fetch.sources.code", scale="paper", **{**changed, **fields}))


def v1_source(**fields) -> HubSource:
    """The Phase 2 paper profile's The Stack v1 source (content inline, data_dir data/python), as a test changes it."""
    return HubSource(**profile_values("fetch.sources.code", scale="paper", phase="phase2", **fields))


def test_s3_keeps_order_and_counts_a_failed_fetch(v2_folder: Path, s3_url: str) -> None:
    files = list(iter_hub(v2_source(v2_folder, s3_url)))
    assert [f.record_index for f in files] == list(range(1, ROWS + 1))
    assert [f.repo_name for f in files] == [f"owner/repo{i}" for i in range(1, ROWS + 1)]
    for i, file in enumerate(files, start=1):
        if i == MISSING:
            assert file.data is None and "NoSuchKey" in file.fetch_error and f"content/blob{i}" in file.fetch_error
        else:
            assert file.data == body(i).encode("utf-8") and file.fetch_error is None  # gunzipped, or raw for RAW


def test_fifo_keeps_order_when_later_fetches_finish_first(v2_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workers, running, peak = 4, [0], [0]
    lock = threading.Lock()

    def slow_fetcher(source):
        def fetch(blob_id: str):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.002 * (ROWS - int(blob_id[4:])))  # early rows are the slow ones
            with lock:
                running[0] -= 1
            return blob_id.encode(), None

        return fetch

    monkeypatch.setattr(hub, "s3_fetcher", slow_fetcher)
    files = list(iter_hub(v2_source(v2_folder, "http://unused", fetch_workers=workers)))
    assert [f.data for f in files] == [f"blob{i}".encode() for i in range(1, ROWS + 1)]
    assert 1 < peak[0] <= workers


def test_original_mode_drops_failed_fetches_and_indices_drift(v2_folder: Path, s3_url: str) -> None:
    files = list(iter_hub(v2_source(v2_folder, s3_url, failed_fetch_mode="original")))
    assert len(files) == ROWS - 1
    assert [f.record_index for f in files] == list(range(1, ROWS))
    after = files[MISSING - 1]
    assert after.repo_name == f"owner/repo{MISSING + 1}" and after.record_index == MISSING


def test_v2_field_resolution(v2_folder: Path, s3_url: str) -> None:
    first, second = itertools.islice(iter_hub(v2_source(v2_folder, s3_url, fetch_workers=1)), 2)
    assert first.license_fields == {"detected_licenses": [], "gha_license_id": "Apache-2.0"}
    assert first.stars == 1 and first.is_generated is False and second.is_generated is True
    assert first.path == "/pkg/mod1.py" and first.encoding == "UTF-8"
    assert first.source == f"local:{v2_folder}" and first.revision == "0123abcd"


def test_stopping_early_does_not_hang(v2_folder: Path, s3_url: str) -> None:
    files = iter_hub(v2_source(v2_folder, s3_url, fetch_workers=2))
    assert [f.record_index for f in itertools.islice(files, 3)] == [1, 2, 3]
    files.close()


def test_inline_mode_and_v1_fields(v1_folder: Path) -> None:
    source = v1_source(dataset=str(v1_folder), revision="v1")
    first, second = iter_hub(source)
    assert first.data == "def ü():\n    return 'é'\n".encode("utf-8") and first.encoding == "utf-8"
    assert (first.repo_name, first.path, first.stars) == ("octo/stars", "src/a.py", 30)
    assert first.license_fields == {"max_stars_repo_licenses": ["MIT"], "licenses": ["GPL-3.0"]}
    # None and "" fall through to the next field; a missing value takes the original's default
    assert (second.repo_name, second.path, second.stars, second.data) == ("octo/plain", "b.py", None, b"")
    assert second.license_fields == {"max_stars_repo_licenses": [], "licenses": ["MIT"]}


def test_revision_is_passed_for_hub_ids_only(v1_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets 4.8.5 ignores ``revision=`` for a local folder, so it is passed only to the Hub."""
    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda path, **kw: calls.append(kw) or iter([]))
    common = profile_values("fetch.sources.code", scale="paper", revision="c0ffee", content="inline")  # config Python
    list(iter_hub(HubSource(**{**common, "dataset": "bigcode/the-stack-v2-dedup"}), token="hf_secret"))
    list(iter_hub(HubSource(**{**common, "dataset": str(v1_folder)}), token="hf_secret"))
    assert calls[0] == dict(
        name="Python", data_dir=None, split="train", streaming=True, revision="c0ffee", token="hf_secret"
    )
    assert calls[1]["revision"] is None


def test_token_is_not_recorded(v1_folder: Path) -> None:
    source = v1_source(dataset=str(v1_folder), revision="v1")
    assert all("hf_secret" not in repr(file) for file in iter_hub(source, token="hf_secret"))


def test_an_unreachable_hub_dataset_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    from tools.configure import render

    params = render("smoke", "phase3")
    params["fetch"]["sources"]["code"] = profile_values(
        "fetch.sources.code", scale="paper", phase="phase2", dataset="legesher/not-in-the-cache", revision="0" * 40)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "stages.fetch", "--source", "code", "--params", str(tmp_path / "params.yaml"),
                           "--out", str(tmp_path / "raw"), "--metrics", str(tmp_path / "m")],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "legesher/not-in-the-cache at revision 0000" in done.stderr and "HF_HUB_OFFLINE is set" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "raw").exists()


def test_helpers() -> None:
    assert get_first({"a": None, "b": "", "c": [], "d": 1}, ("a", "b", "c", "d")) == []  # the original's rule
    assert get_first({}, ("a",), "default") == "default"
    assert [to_int(v) for v in (3, 3.9, "7", None, "x", float("inf"))] == [3, 3, 7, None, None, None]
    assert gunzip_or_raw(gzip.compress(b"abc")) == b"abc"
    assert gunzip_or_raw(b"\x1f\x8b broken") == b"\x1f\x8b broken"
    assert gunzip_or_raw(b"plain") == b"plain"
    assert hub.is_local(v1_source(dataset="no/such-folder", revision="r")) is False


def test_records_feed_the_filter_chain(v2_folder: Path, s3_url: str) -> None:
    from stages.lib.filters import FilterChain
    from stages.lib.params import Filters

    chain = FilterChain(Filters(**profile_values("fetch.filters", scale="paper", min_lines=1, min_stars=None)))
    verdicts = [chain.consider(file) for file in iter_hub(v2_source(v2_folder, s3_url))]
    assert verdicts[0].license == "Apache-2.0"  # the empty detected_licenses falls through to gha_license_id
    assert verdicts[0].file_path.startswith("000000001_owner-repo1_mod1_")
    assert verdicts[1].reason == "failed_autogenerated"
    assert verdicts[MISSING - 1].reason == "fetch_failed"
    assert chain.stats()["accepted"] == ROWS - 2
