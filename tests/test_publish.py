"""publish: what an upload would send (--dry-run), the refusals before any network, the commit record."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import CommitInfo

from tools import publish
from tools.configure import render
from stages.lib.params import parse_params
from stages.lib.provenance import file_sha256, write_json
from stages.manifest import build_manifest, write_manifest, write_model_card

SECRET = "hf_notarealtokenbutsecret0123456789"


@pytest.fixture
def models(tmp_path):
    """models/ as the pipeline leaves it: every smoke adapter, the manifest, the card; plus what must stay home."""
    params = parse_params(render())
    root = tmp_path / "models"
    for run_id in params.runs:
        folder = root / "tiny-aya-base" / run_id
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(run_id.encode())
        (folder / "adapter_config.json").write_text('{"r": 16}\n')
        write_json(folder / "run_config.json", {"params": {"dataset": {"sha256": "d" * 64}, "derived": {"steps": 4},
                                                           "train": params.train.model_dump(mode="json")}})
    manifest = build_manifest(params, root)
    write_manifest(manifest, root)
    write_model_card(manifest, root, tmp_path / "no-metrics", tmp_path / "no-report.json")
    (root / "TRAINING.md").write_text("notes\n")
    (root / "base").mkdir()
    (root / "base" / "model.safetensors").write_bytes(b"base")  # the smoke base: never published
    return root


def test_dry_run_prints_every_file_repo_and_revision_and_touches_nothing(models, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    before = sorted(p for p in models.rglob("*"))
    assert publish.main(["adapters", "--repo", "org/lora", "--revision", "v1", "--models", str(models), "--dry-run"]) == 0
    out = capsys.readouterr().out
    files = publish.adapter_files(models)
    assert out.splitlines()[0] == f"publish: {len(files)} files from {models} to model repo org/lora at revision v1"
    listed = [line.split()[0] for line in out.splitlines()[1:-1]]
    assert listed == files and len(files) == 4 + 3 * len(parse_params(render()).runs)
    assert "tiny-aya-base/condition-2-zh-5k-seed42/adapter_model.safetensors" in listed
    assert {"README.md", "MANIFEST.md", "manifest.json", "TRAINING.md"} <= set(listed)
    assert not any(name.startswith("base/") for name in listed)
    assert out.splitlines()[-1] == "publish: dry run, nothing uploaded" and SECRET not in out
    assert sorted(p for p in models.rglob("*")) == before and not (models / publish.RECORD).exists()


def test_dataset_dry_run(tmp_path, capsys):
    folder = tmp_path / "data" / "packaged" / "condition-2-zh-5k"
    folder.mkdir(parents=True)
    for name in ("train-00000-of-00001.parquet", "validation-00000-of-00001.parquet", "README.md", "provenance.json",
                 publish.RECORD):
        (folder / name).write_text(name)
    args = ["dataset", "--dataset", "condition-2-zh-5k", "--repo", "org/data", "--data", str(tmp_path / "data"), "--dry-run"]
    assert publish.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("to dataset repo org/data at revision main")
    assert [line.split()[0] for line in out[1:-1]] == ["README.md", "provenance.json", "train-00000-of-00001.parquet",
                                                       "validation-00000-of-00001.parquet"]  # never the record itself
    assert publish.main(["dataset", "--dataset", "..", "--repo", "o/d", "--data", str(tmp_path / "data"), "--dry-run"]) == 2
    assert publish.main(["dataset", "--dataset", "condition-9", "--repo", "o/d", "--data", str(tmp_path / "data")]) == 2
    assert "dvc repro package@condition-9" in capsys.readouterr().err


def test_an_upload_is_refused_before_the_network_without_a_token_or_while_offline(models, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert publish.main(["adapters", "--repo", "org/lora", "--models", str(models)]) == 2
    captured = capsys.readouterr()
    assert "HF_HUB_OFFLINE is set" in captured.err and SECRET not in captured.out + captured.err
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN")
    assert publish.main(["adapters", "--repo", "org/lora", "--models", str(models)]) == 2
    assert "HF_TOKEN is not set" in capsys.readouterr().err
    assert not (models / publish.RECORD).exists()


def test_missing_pieces_are_named(tmp_path, models, capsys):
    assert publish.main(["adapters", "--repo", "o/l", "--models", str(tmp_path / "none"), "--dry-run"]) == 2
    assert "no manifest" in capsys.readouterr().err
    (models / "README.md").unlink()
    assert publish.main(["adapters", "--repo", "o/l", "--models", str(models), "--dry-run"]) == 2
    assert "missing README.md" in capsys.readouterr().err


def test_the_commit_record_names_the_commit_and_every_file(models):
    files = publish.adapter_files(models)
    commit = CommitInfo(commit_url="https://huggingface.co/org/lora/commit/" + "c" * 40, commit_message="m",
                        commit_description="", oid="c" * 40)
    record = publish.commit_record(models, "org/lora", "model", "main", files, commit)
    assert record["commit"] == "c" * 40 and record["commit_url"].endswith("c" * 40)
    assert [f["path"] for f in record["files"]] == files
    readme = next(f for f in record["files"] if f["path"] == "README.md")
    assert readme["sha256"] == file_sha256(models / "README.md")
    assert json.loads(json.dumps(record)) == record
