"""train: a LoRA adapter per run, in the seed card's layout, rebuilt byte for byte on CPU."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from pydantic import ValidationError

from stages.base import build
from stages.lib.params import Base, Run, Train
from stages.lib.tables import split_path, write_parquet
from stages.package import PACKAGED_SCHEMA
from stages.train import TrainError, planned_steps, train_run, warmup_steps

DATASET = "condition-1-en-tiny"
RUN_ID = "condition-1-en-tiny-seed42"
ROWS = 37  # ceil(37 / 16) = 3 optimizer steps, the last one short
SNIPPETS = [
    "def add(a, b):\n    return a + b\n",
    "for item in items:\n    if item > 10:\n        print(item)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n",
    "while queue:\n    node = queue.pop()\n    seen.add(node)\n",
]
RUN_FILES = {"adapter_config.json", "adapter_model.safetensors", "training_metrics.json", "run_config.json", "provenance.json"}
CLOCK = re.compile(r"runtime|per_second|_time\b|time_|timestamp|seconds|duration|started|finished", re.IGNORECASE)


def tiny_train(**overrides) -> Train:
    fields = dict(
        backend="peft-cpu", load_in_4bit=False, optim="adamw_torch", fp16=False, max_seq_length=48, logging_steps=1
    )
    fields.update(overrides)
    return Train(**fields)


BASE = Base(kind="tiny", repo="CohereLabs/tiny-aya-base", revision="PIN-ME", seed=7, vocab_size=300)


def run_for(seed: int) -> Run:
    return Run(condition=1, data_lang="en", tier="tiny", seed=seed, dataset=DATASET)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rows = [
        {
            "code": SNIPPETS[i % len(SNIPPETS)] * (1 + i % 3) + f"# file {i}\n",
            "code_en": SNIPPETS[i % len(SNIPPETS)],
            "language": "en",
            "file_path": f"{i:03d}.py",
            "license": "MIT",
            "idx": i,
            "token_count": 0,
        }
        for i in range(ROWS)
    ]
    data = root / "data" / "packaged"
    write_parquet(split_path(data / DATASET, "train"), rows, PACKAGED_SCHEMA)
    write_parquet(split_path(data / DATASET, "validation"), rows[:3], PACKAGED_SCHEMA)
    base_dir = root / "models" / "base"
    build(base_dir, data, [DATASET], seed=7, vocab_size=300, config_kwargs={"hidden_size": 32, "intermediate_size": 64})
    return root, data, base_dir


def train_into(workspace, models_name: str, seed: int = 42, run_id: str = RUN_ID, **overrides):
    root, data, base_dir = workspace
    models = root / models_name
    out = train_run(
        run_id, run_for(seed), tiny_train(**overrides), BASE, base_dir=base_dir, data_dir=data, models_dir=models,
        logs_dir=root / f"logs-{models_name}",
    )
    return models, out


@pytest.fixture(scope="module")
def first(workspace):
    return train_into(workspace, "models-a")


def test_layout_and_metrics(first):
    models, out = first
    assert out == models / "tiny-aya-base" / RUN_ID
    assert {p.name for p in out.iterdir()} == RUN_FILES
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert {"model_config_name", "condition_name", "seed", "output_name", "train_result", "log_history"} <= set(metrics)
    assert metrics["model_config_name"] == "tiny-aya-base"
    assert metrics["condition_name"] == DATASET
    assert metrics["output_name"] == RUN_ID and metrics["seed"] == 42
    assert metrics["data"]["rows"] == ROWS and metrics["data"]["split"] == "train"
    assert metrics["data"]["steps"] == math.ceil(ROWS / 16) == 3
    assert metrics["data"]["warmup_steps"] == math.ceil(0.05 * 3) == 1
    assert [e["step"] for e in metrics["log_history"] if "loss" in e] == [1, 2, 3]
    assert "train_loss" in metrics["train_result"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and config["lora_dropout"] == 0.0
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["params"]["seed"] == 42
    assert run_config["params"]["derived"] == {"global_batch_size": 16, "gradient_accumulation_steps": 2, "steps": 3, "warmup_steps": 1}
    assert "peft" in run_config["packages"] and "torch" in run_config["packages"]


def test_adapter_loads_the_seed_card_way(first, workspace):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    models, out = first
    base = AutoModelForCausalLM.from_pretrained(workspace[2], trust_remote_code=False)
    model = PeftModel.from_pretrained(base, str(models), subfolder=f"tiny-aya-base/{RUN_ID}")
    saved = load_file(out / "adapter_model.safetensors")
    assert saved and all(".lora_" in key for key in saved)
    state = model.state_dict()
    key = next(k for k in saved if "q_proj.lora_B" in k)
    loaded = next(v for k, v in state.items() if k.endswith(key.replace(".weight", ".default.weight")))
    assert torch.equal(loaded, saved[key]) and loaded.abs().sum() > 0  # B starts at zero: it was trained
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[5, 40, 41, 42]])).logits
    assert torch.isfinite(logits).all()


def test_rebuilds_byte_for_byte(first, workspace):
    _, out_a = first
    _, out_b = train_into(workspace, "models-b")
    for name in ("adapter_model.safetensors", "training_metrics.json", "adapter_config.json", "run_config.json"):
        assert (out_a / name).read_bytes() == (out_b / name).read_bytes(), name


def test_another_seed_trains_another_adapter(first, workspace):
    _, out_a = first
    _, out_c = train_into(workspace, "models-c", seed=123, run_id="condition-1-en-tiny-seed123")
    assert (out_a / "adapter_model.safetensors").read_bytes() != (out_c / "adapter_model.safetensors").read_bytes()


def test_no_wall_clock_inside_the_run_folder(first, workspace):
    models, out = first

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    for path in out.iterdir():
        if path.suffix == ".json":
            found = [k for k in keys(json.loads(path.read_text())) if CLOCK.search(k)]
            assert not found, f"{path.name} holds wall-clock fields {found}"
    log = json.loads((workspace[0] / "logs-models-a" / f"train-{RUN_ID}.json").read_text())
    assert "train_runtime" in log["train_result_timing"] and log["wall_seconds"] > 0


def test_global_batch_arithmetic():
    train = Train(backend="unsloth", load_in_4bit=True, optim="paged_adamw_8bit", fp16=True)
    assert (train.per_device_train_batch_size, train.world_size) == (8, 2)
    assert train.global_batch_size == 16 and train.gradient_accumulation_steps == 2
    assert planned_steps(4500, train) == 282 and warmup_steps(282, train.warmup_ratio) == 15
    assert planned_steps(18000, train) == 1125
    assert planned_steps(500, train) == 32 and warmup_steps(32, 0.05) == 2  # the logged 500-row run
    assert planned_steps(4500, train.model_copy(update={"max_steps": 5})) == 5
    for rows in (1, 15, 16, 17, 37, 4088):
        assert planned_steps(rows, train) == math.ceil(rows / 16)


def test_missing_dataset_names_the_path(workspace, tmp_path):
    _, _, base_dir = workspace
    with pytest.raises(TrainError) as error:
        train_run(RUN_ID, run_for(42), tiny_train(), BASE, base_dir=base_dir, data_dir=tmp_path, models_dir=tmp_path / "m")
    assert str(split_path(tmp_path / DATASET, "train")) in str(error.value)
    assert not (tmp_path / "m").exists()


def test_cpu_backend_refuses_gpu_settings():
    for bad in ({"fp16": True}, {"load_in_4bit": True}, {"optim": "paged_adamw_8bit"}):
        with pytest.raises(ValidationError):
            tiny_train(**bad)
    with pytest.raises(ValidationError):
        Train(backend="unsloth", load_in_4bit=False, optim="paged_adamw_8bit")


def test_rebuilds_byte_for_byte_across_processes(first, workspace, repo_root):
    """Fresh interpreters with different string-hash seeds (PEFT keeps target_modules in a set)."""
    import os
    import subprocess
    import sys

    root, data, base_dir = workspace
    script = (
        "import sys; from pathlib import Path; from stages.lib.params import Base, Run, Train; "
        "from stages.train import train_run; "
        f"train_run({RUN_ID!r}, Run(condition=1, data_lang='en', tier='tiny', seed=42, dataset={DATASET!r}), "
        "Train(backend='peft-cpu', load_in_4bit=False, optim='adamw_torch', fp16=False, max_seq_length=48, logging_steps=1), "
        "Base(kind='tiny', repo='CohereLabs/tiny-aya-base', revision='PIN-ME', seed=7, vocab_size=300), "
        f"base_dir=Path({str(base_dir)!r}), data_dir=Path({str(data)!r}), models_dir=Path(sys.argv[1]), logs_dir=None)"
    )
    outs = []
    for hash_seed in ("1", "2"):
        models = root / f"models-proc-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(models)], cwd=repo_root, env=env, check=True, capture_output=True)
        outs.append(models / "tiny-aya-base" / RUN_ID)
    _, out_a = first
    for name in ("adapter_config.json", "adapter_model.safetensors", "training_metrics.json", "run_config.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes() == (out_a / name).read_bytes(), name
    assert json.loads((out_a / "adapter_config.json").read_text())["target_modules"] == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
