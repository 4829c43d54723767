"""import_adapters: the published adapters into models/<path>/, offline against a folder in the Hub's layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

import stages.import_adapters as importer
from tools.configure import render
from stages.lib.params import parse_params
from stages.lib.provenance import file_sha256
from stages.manifest import build_manifest

REVISION = "0123456789abcdef0123456789abcdef01234567"
RUNS = ["condition-2-zh-5k-seed42", "condition-1-en-20k-seed42"]


def paper_params(phase: str = "phase3"):
    return parse_params(render(scale="paper", phase=phase))


def hub_adapter(root, path: str, *, weights: bool = True) -> None:
    folder = root / path
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "base_model_name_or_path": "CohereLabs/tiny-aya-base"}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    if weights:
        seed = sum(path.encode())
        tensors = {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.full((16, 8), seed % 7, np.float32),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((8, 16), np.float32),
        }
        save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "training_metrics.json").write_text('{"seed": 42}\n')


@pytest.fixture
def hub(tmp_path):
    root = tmp_path / "hub"
    for run_id in RUNS:
        hub_adapter(root, f"tiny-aya-base/{run_id}")
    hub_adapter(root, "condition-2-zh-5k")  # a Phase 2 flat folder beside them, as on the Hub
    return root


def test_imports_into_the_cards_layout(hub, tmp_path):
    models = tmp_path / "models"
    written = importer.import_adapters(paper_params(), importer.DEFAULT_REPO, REVISION, RUNS, local_dir=hub, models_dir=models)
    assert written == [models / "tiny-aya-base" / run_id for run_id in RUNS]
    for run_id in RUNS:
        out = models / "tiny-aya-base" / run_id
        assert {p.name for p in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "training_metrics.json", "import.json"}
        src = hub / "tiny-aya-base" / run_id
        assert (out / "adapter_model.safetensors").read_bytes() == (src / "adapter_model.safetensors").read_bytes()
        record = json.loads((out / "import.json").read_text())
        assert record["repo"] == "legesher/language-decoded-lora" and record["revision"] == REVISION
        assert record["path_in_repo"] == f"tiny-aya-base/{run_id}"
        assert record["files_sha256"]["adapter_model.safetensors"] == file_sha256(src / "adapter_model.safetensors")
    before = (models / "tiny-aya-base" / RUNS[0] / "import.json").read_bytes()
    importer.import_adapters(paper_params(), importer.DEFAULT_REPO, REVISION, RUNS, local_dir=hub, models_dir=models)
    assert (models / "tiny-aya-base" / RUNS[0] / "import.json").read_bytes() == before
    manifest = build_manifest(paper_params(), models, allow_missing=True)
    origins = {a["run_id"]: a["origin"] for a in manifest["adapters"] if a["status"] == "present"}
    assert origins == {run_id: f"imported from legesher/language-decoded-lora@{REVISION}" for run_id in RUNS}


def test_download_boundary_gets_the_pinned_revision_and_patterns(hub, tmp_path, monkeypatch):
    calls = []

    def fake_download(repo, revision, patterns, cache_dir=None):
        calls.append((repo, revision, patterns))
        return hub

    monkeypatch.setattr(importer, "download", fake_download)
    importer.import_adapters(paper_params(), "legesher/language-decoded-lora", REVISION, RUNS[:1], models_dir=tmp_path / "m")
    ((repo, revision, patterns),) = calls
    assert (repo, revision) == ("legesher/language-decoded-lora", REVISION)
    assert patterns == [f"tiny-aya-base/{RUNS[0]}/{name}" for name in ("adapter_config.json", "adapter_model.safetensors", "training_metrics.json")]
    assert (tmp_path / "m" / "tiny-aya-base" / RUNS[0] / "adapter_model.safetensors").is_file()


def test_phase2_flat_layout(hub, tmp_path):
    models = tmp_path / "models"
    importer.import_adapters(paper_params("phase2"), importer.DEFAULT_REPO, REVISION, ["condition-2-zh-5k"], local_dir=hub, models_dir=models)
    assert (models / "condition-2-zh-5k" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("revision", ["PIN-ME", "main", ""])
def test_refuses_an_unpinned_revision(hub, tmp_path, revision):
    with pytest.raises(importer.AdapterImportError, match="not pinned"):
        importer.import_adapters(paper_params(), importer.DEFAULT_REPO, revision, RUNS, local_dir=hub, models_dir=tmp_path / "m")


def test_a_broken_adapter_copies_nothing(hub, tmp_path):
    hub_adapter(hub, "tiny-aya-base/condition-2-es-5k-seed42", weights=False)
    models = tmp_path / "models"
    with pytest.raises(importer.AdapterImportError, match="no adapter_model.safetensors"):
        importer.import_adapters(
            paper_params(), importer.DEFAULT_REPO, REVISION, [*RUNS, "condition-2-es-5k-seed42"], local_dir=hub, models_dir=models
        )
    assert not models.exists()
    (hub / "tiny-aya-base" / "condition-2-es-5k-seed42" / "adapter_model.safetensors").write_bytes(b"\xff" * 20)
    with pytest.raises(importer.AdapterImportError, match="safetensors"):
        importer.import_adapters(paper_params(), importer.DEFAULT_REPO, REVISION, ["condition-2-es-5k-seed42"], local_dir=hub, models_dir=models)
    with pytest.raises(importer.AdapterImportError, match="not in params.yaml"):
        importer.import_adapters(paper_params(), importer.DEFAULT_REPO, REVISION, ["condition-9-xx"], local_dir=hub, models_dir=models)


def test_a_local_copy_of_another_commit_is_refused(hub, tmp_path):
    path = f"tiny-aya-base/{RUNS[0]}/adapter_model.safetensors"
    metadata = hub / ".cache" / "huggingface" / "download" / f"{path}.metadata"
    metadata.parent.mkdir(parents=True)
    metadata.write_text("f" * 40 + "\netag\n1700000000.0\n")
    with pytest.raises(importer.AdapterImportError, match="f" * 40):
        importer.import_adapters(paper_params(), importer.DEFAULT_REPO, REVISION, RUNS, local_dir=hub, models_dir=tmp_path / "m")


def test_cli_refuses_smoke_params(hub, tmp_path, capsys):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(render()))
    argv = ["--revision", REVISION, "--local-dir", str(hub), "--params", str(params_path), "--models", str(tmp_path / "m")]
    assert importer.main(argv) == 2
    assert "--scale paper" in capsys.readouterr().err
    params_path.write_text(yaml.safe_dump(render(scale="paper")))
    assert importer.main([*argv, "--runs", *RUNS]) == 0
    assert importer.main(["--local-dir", str(hub), "--params", str(params_path)]) == 2  # no --revision: PIN-ME



def test_stage_reads_the_published_section_through_snapshot_download(tmp_path, capsys):
    """``--stage`` (dvc.yaml: import_adapters): repo and revision from params, every run, through huggingface_hub's
    snapshot_download on a local cache in the Hub's layout; disabled it only says why; PIN-ME is refused."""
    from stages.lib import published

    data = render(scale="paper")
    hub = tmp_path / "hub"
    for run_id in data["runs"]:
        hub_adapter(hub, f"tiny-aya-base/{run_id}")
    cache = tmp_path / "cache"
    files = {p.relative_to(hub).as_posix(): p.read_bytes() for p in hub.rglob("*") if p.is_file()}
    published.write_cache(cache, importer.DEFAULT_REPO, "model", REVISION, files)
    params_path, out = tmp_path / "params.yaml", tmp_path / "adapters"
    argv = ["--stage", "--params", str(params_path), "--models", str(out), "--cache-dir", str(cache)]

    params_path.write_text(yaml.safe_dump(data))  # the paper profile: enabled, revision PIN-ME
    assert importer.main(argv) == 2
    assert "published.adapters.revision 'PIN-ME' is not pinned" in capsys.readouterr().err

    data["published"]["adapters"]["revision"] = REVISION
    params_path.write_text(yaml.safe_dump(data))
    assert importer.main(argv) == 0
    status = json.loads((out / "status.json").read_text())
    assert (status["status"], status["revision"], status["adapters"]) == ("imported", REVISION, len(data["runs"]))
    for run_id in data["runs"]:
        path = f"tiny-aya-base/{run_id}/adapter_model.safetensors"
        assert (out / path).read_bytes() == files[path]

    data["published"]["enabled"] = False
    params_path.write_text(yaml.safe_dump(data))
    assert importer.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["status.json"]
    assert json.loads((out / "status.json").read_text())["status"] == "skipped"
    with pytest.raises(SystemExit):
        importer.main([*argv, "--runs", RUNS[0]])  # the stage takes its runs from params
