"""fetch and subset as commands: outputs, ledgers, counters and identical bytes on a rerun."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from stages import fetch, subset
from tools.configure import render
from stages.lib.tables import read_jsonl, read_provenance, read_rows, split_path


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    data = render("smoke", "phase3")
    data["fetch"]["sources"]["code"] = {"kind": "installed", "distributions": {"tqdm": "4.70.1", "pydantic": "2.14.3"}, "limit": None}
    data["subset"]["tiers"] = {"5k": 20, "20k": 40}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "provenance.json"
    }


def run_fetch_and_subset(params: Path, out: Path) -> None:
    for source in ("code", "native-zh"):
        assert fetch.main(["--source", source, "--params", str(params), "--out", str(out / "raw"), "--metrics", str(out / "metrics")]) == 0
    for tier in ("5k", "20k"):
        args = ["--tier", tier, "--params", str(params), "--raw", str(out / "raw"), "--out", str(out / "data")]
        assert subset.main(args + ["--metrics", str(out / "metrics")]) == 0


def test_fetch_then_subset(tmp_path, params_file):
    out = tmp_path / "a"
    run_fetch_and_subset(params_file, out)

    pool = read_rows(out / "raw/code/files.parquet")
    ledger = read_jsonl(out / "raw/code/ledger.jsonl")
    stats = json.loads((out / "metrics/fetch-code.json").read_text())["fetch"]["code"]
    assert stats["accepted"] == len(pool) > 40
    assert stats["processed"] == len(pool) + len(ledger)  # nothing disappears silently
    assert stats["failed_license"] == sum(1 for r in ledger if r["reason"] == "failed_license") > 0
    assert all(r["repo_name"].startswith("pydantic==") for r in pool)  # tqdm's MPL licence refused
    manifest = read_jsonl(out / "raw/code/manifest.jsonl")
    assert [m["file_path"] for m in manifest] == [r["file_path"] for r in pool]
    assert all(set(m) >= {"file_path", "sha256", "size", "source", "revision", "license"} for m in manifest)
    assert read_provenance(out / "raw/code/files.parquet")["stage"] == "fetch"

    native = read_rows(out / "raw/native-zh/files.parquet")
    assert native and any(any("\u4e00" <= ch <= "\u9fff" for ch in r["code"]) for r in native)

    small = read_rows(split_path(out / "data/condition-1-en-5k", "train")) + read_rows(
        split_path(out / "data/condition-1-en-5k", "validation"))
    large = read_rows(split_path(out / "data/condition-1-en-20k", "train")) + read_rows(
        split_path(out / "data/condition-1-en-20k", "validation"))
    assert len(small) == 20 and len(large) == 40
    assert {r["file_path"] for r in small} <= {r["file_path"] for r in pool}

    # the same inputs give the same bytes
    again = tmp_path / "b"
    run_fetch_and_subset(params_file, again)
    assert digest_tree(out) == digest_tree(again)


def test_unknown_source_and_tier_are_named(tmp_path, params_file, capsys):
    assert fetch.main(["--source", "nope", "--params", str(params_file)]) == 2
    assert "fetch.sources.nope" in capsys.readouterr().err
    assert subset.main(["--tier", "7k", "--params", str(params_file)]) == 2
    assert "subset.tiers.7k" in capsys.readouterr().err


def test_subset_without_pool_says_what_to_run(tmp_path, params_file, capsys):
    assert subset.main(["--tier", "5k", "--params", str(params_file), "--raw", str(tmp_path / "none")]) == 2
    assert "dvc repro" in capsys.readouterr().err
