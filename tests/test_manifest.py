"""manifest: every adapter path -> phase -> source corpus -> condition -> seed, in deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.configure import render
from stages.lib.params import parse_params
from stages.lib.provenance import file_sha256, write_json
from stages.manifest import ManifestError, build_manifest, main, write_manifest


def params_for(phase: str = "phase3", scale: str = "smoke"):
    return parse_params(render(scale=scale, phase=phase))


def fake_adapter(folder, run_id: str, dataset_sha: str = "d" * 64) -> None:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(run_id.encode() * 3)
    (folder / "adapter_config.json").write_text('{"r": 16}\n')
    write_json(folder / "run_config.json", {"params": {"dataset": {"sha256": dataset_sha}}})


def test_phase3_paths_and_fields(tmp_path):
    params = params_for()
    for run_id in params.runs:
        fake_adapter(tmp_path / "tiny-aya-base" / run_id, run_id)
    manifest = build_manifest(params, tmp_path)
    assert [a["run_id"] for a in manifest["adapters"]] == list(params.runs)  # params order, not a folder glob
    entry = next(a for a in manifest["adapters"] if a["run_id"] == "condition-2-zh-5k-seed123")
    assert entry["path"] == "tiny-aya-base/condition-2-zh-5k-seed123"
    assert (entry["phase"], entry["condition"], entry["data_lang"], entry["tier"], entry["seed"]) == ("phase3", 2, "zh", "5k", 123)
    assert entry["dataset"] == "condition-2-zh-5k" and entry["origin"] == "trained"
    assert entry["adapter_model_sha256"] == file_sha256(tmp_path / entry["path"] / "adapter_model.safetensors")
    assert entry["dataset_sha256"] == "d" * 64
    native = next(a for a in manifest["adapters"] if a["condition"] == 3)
    assert native["path"] == "tiny-aya-base/condition-3-zh-5k-native-code-seed42"
    assert "pypinyin" in native["source"]["corpus"]


def test_deterministic_bytes(tmp_path):
    params = params_for()
    for run_id in params.runs:
        fake_adapter(tmp_path / "tiny-aya-base" / run_id, run_id)
    write_manifest(build_manifest(params, tmp_path), tmp_path)
    first = [(tmp_path / name).read_bytes() for name in ("MANIFEST.md", "manifest.json")]
    write_manifest(build_manifest(params, tmp_path), tmp_path)
    assert [(tmp_path / name).read_bytes() for name in ("MANIFEST.md", "manifest.json")] == first
    text = first[0].decode()
    assert "| `tiny-aya-base/condition-1-en-5k-seed42/` | phase3 |" in text
    assert str(tmp_path) not in text and str(tmp_path) not in first[1].decode()


def test_phase2_uses_the_flat_layout(tmp_path):
    params = params_for(phase="phase2")
    assert params.train.adapters_dir == "models"
    for run_id in params.runs:
        fake_adapter(tmp_path / run_id, run_id)
    manifest = build_manifest(params, tmp_path)
    paths = {a["path"] for a in manifest["adapters"]}
    assert {"condition-2-zh-5k", "condition-1-en-32k", "condition-3-zh-5k"} <= paths
    assert all("/" not in path for path in paths) and manifest["phase"] == "phase2"


def test_paper_sources_name_the_hub_corpora():
    params = params_for(scale="paper")
    manifest = build_manifest(params, Path("/nonexistent"), allow_missing=True)
    by_condition = {a["condition"]: a["source"]["corpus"] for a in manifest["adapters"]}
    assert by_condition[1] == by_condition[2] == by_condition[5] == "bigcode/the-stack-v2-dedup"
    assert by_condition[3] == "legesher/language-decoded-data"  # the published condition-3 corpus, imported
    phase2 = build_manifest(params_for("phase2", "paper"), Path("/nonexistent"), allow_missing=True)
    assert {a["source"]["corpus"] for a in phase2["adapters"] if a["condition"] == 1} == {"bigcode/the-stack"}


def test_missing_and_imported_adapters(tmp_path):
    params = params_for()
    with pytest.raises(ManifestError, match="train@condition-1-en-5k-seed42"):
        build_manifest(params, tmp_path)
    manifest = build_manifest(params, tmp_path, allow_missing=True)
    assert {a["status"] for a in manifest["adapters"]} == {"missing"}
    folder = tmp_path / "tiny-aya-base" / "condition-1-en-5k-seed42"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(ManifestError, match="neither run_config.json"):
        build_manifest(params, tmp_path, allow_missing=True)
    write_json(folder / "import.json", {"repo": "legesher/language-decoded-lora", "revision": "a" * 40})
    entry = build_manifest(params, tmp_path, allow_missing=True)["adapters"][0]
    assert entry["origin"] == f"imported from legesher/language-decoded-lora@{'a' * 40}"


def test_cli(tmp_path, capsys):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(render()))
    models = tmp_path / "models"
    assert main(["--params", str(params_path), "--models", str(models)]) == 2
    assert "--allow-missing" in capsys.readouterr().err
    assert main(["--params", str(params_path), "--models", str(models), "--allow-missing"]) == 0
    data = json.loads((models / "manifest.json").read_text())
    assert data["schema_version"] == 1 and len(data["adapters"]) == len(render()["runs"])
