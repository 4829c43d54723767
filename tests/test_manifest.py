"""manifest: every adapter path -> phase -> source corpus -> condition -> seed, in deterministic bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.configure import render
from stages.lib.params import parse_params
from stages.lib.provenance import file_sha256, write_json
from stages.manifest import ManifestError, build_manifest, main, write_manifest, write_model_card


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


# --- the model card (models/README.md) ------------------------------------------------------------------

def trained_adapter(models: Path, train_metrics: Path, params, run_id: str, path: str) -> None:
    """An adapter folder with the run_config.json train writes, and its metrics/train summary."""
    folder = models / path
    fake_adapter(folder, run_id)
    steps = 12 if "-20k-" in run_id else 4
    write_json(folder / "run_config.json", {
        "packages": {"peft": "0.21.2", "torch": "2.13.0+cpu"},
        "params": {"dataset": {"sha256": "d" * 64}, "train": params.train.model_dump(mode="json"),
                   "derived": {"steps": steps, "global_batch_size": 16}},
    })
    write_json(train_metrics / run_id / "summary.json",
               {"rows": steps * 13, "tokens": steps * 3300, "steps": steps, "train_loss": 12.5 - steps / 10})


def card_inputs(tmp_path, params, evaluation: dict | None):
    models, train_metrics, report = tmp_path / "models", tmp_path / "metrics" / "train", tmp_path / "metrics.json"
    for run_id in params.runs:
        path = Path(params.train.adapters_dir).relative_to("models") / run_id
        trained_adapter(models, train_metrics, params, run_id, path.as_posix())
    if evaluation is not None:
        write_json(report, evaluation)
    return models, train_metrics, report


EVALUATION = {"sib200": {"baseline": {"acc_refined": 0.5, "acc_strict": 0.4, "n_seeds": 1},
                         "condition-2-zh-5k": {"acc_refined": 0.61, "delta_refined": 0.11, "acc_strict": 0.3,
                                               "delta_strict": -0.1, "n_seeds": 3}}}


def test_the_smoke_model_card_parses_lists_every_adapter_and_says_it_is_smoke(tmp_path):
    from huggingface_hub import ModelCard

    params = params_for()
    models, train_metrics, report = card_inputs(tmp_path, params, EVALUATION)
    manifest = build_manifest(params, models)
    write_model_card(manifest, models, train_metrics, report)
    card = ModelCard.load(models / "README.md")
    data = card.data.to_dict()
    assert (data["library_name"], data["license"], data["pipeline_tag"]) == ("peft", "apache-2.0", "text-generation")
    assert data["language"] == ["en", "es", "ur", "zh"] and "smoke-test" in data["tags"]
    assert "base_model" not in data and "datasets" not in data  # a tiny stand-in, installed packages: not Hub ids
    assert "Smoke adapters, not the study's" in card.text
    for run_id in params.runs:  # every adapter folder, by the path subfolder= takes
        assert f"| `tiny-aya-base/{run_id}/` |" in card.text
        assert (models / "tiny-aya-base" / run_id).is_dir()
    assert 'subfolder="tiny-aya-base/condition-1-en-5k-seed42"' in card.text
    assert "| lora.r | `16` |" in card.text and "| train.backend | `\"peft-cpu\"` |" in card.text
    assert "| derived.steps | `varies: 4, 12` |" in card.text
    assert "| condition-1-en-20k-seed42 | 156 | 39600 | 12 | 11.3000 |" in card.text
    assert "| condition-2-zh-5k | 3 | 61.0 (+11.0) |" in card.text and "These are smoke numbers" in card.text
    first = (models / "README.md").read_bytes()
    write_model_card(build_manifest(params, models), models, train_metrics, report)
    assert (models / "README.md").read_bytes() == first and str(tmp_path).encode() not in first


def test_the_paper_model_card_names_the_hub_base_and_corpora(tmp_path):
    from huggingface_hub import ModelCard

    params = params_for(scale="paper")
    models, train_metrics, report = card_inputs(tmp_path, params, None)
    write_model_card(build_manifest(params, models), models, train_metrics, report)
    card = ModelCard.load(models / "README.md")
    assert card.data.base_model == params.base.repo == "CohereLabs/tiny-aya-base"
    assert "bigcode/the-stack-v2-dedup" in card.data.datasets and "qlora" in card.data.tags
    assert "Smoke adapters" not in card.text and "No evaluation yet" in card.text
    assert f'from_pretrained("CohereLabs/tiny-aya-base", revision="{params.base.revision}")' in card.text


def test_phase2_and_imported_cards(tmp_path):
    from huggingface_hub import ModelCard

    params = params_for(phase="phase2")
    models, train_metrics, report = card_inputs(tmp_path, params, {"xnli": {"baseline": {"acc_strict": 0.333, "n_seeds": 1}}})
    write_model_card(build_manifest(params, models), models, train_metrics, report)
    card = ModelCard.load(models / "README.md")
    assert all(f"| `{run_id}/` |" in card.text for run_id in params.runs)  # the flat layout
    assert "Strict-extractor accuracy" in card.text and "| Condition | seeds | XNLI |" in card.text and "| baseline | 1 | 33.3 |" in card.text

    imported = tmp_path / "imported"
    for run_id in params.runs:
        folder = imported / run_id
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        (folder / "adapter_config.json").write_text("{}")
        write_json(folder / "import.json", {"repo": "legesher/language-decoded-lora", "revision": "a" * 40})
    write_model_card(build_manifest(params, imported), imported, tmp_path / "none", tmp_path / "none.json")
    text = ModelCard.load(imported / "README.md").text
    assert "No adapter was trained here" in text and f"imported from legesher/language-decoded-lora@{'a' * 40}" in text


def test_a_run_config_train_did_not_write_is_named(tmp_path):
    params = params_for()
    for run_id in params.runs:
        fake_adapter(tmp_path / "tiny-aya-base" / run_id, run_id)  # run_config.json without params.train
    with pytest.raises(ManifestError, match="condition-1-en-5k-seed42/run_config.json: no params.train"):
        write_model_card(build_manifest(params, tmp_path), tmp_path, tmp_path / "m", tmp_path / "r.json")
