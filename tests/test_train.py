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
from stages.lib.hf_patches import LOSS_TOTAL_FILE
from tests.conftest import profile_values
from stages.train import (
    TrainError,
    adapter_folder,
    torchrun_command,
    checkpoint_dir,
    checkpoint_fingerprint,
    last_checkpoint,
    planned_steps,
    train_run,
    warmup_steps,
)

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
    """The smoke profile's train section, 48 tokens per row and no checkpoints unless a test asks."""
    return Train(**profile_values("train", **{"max_seq_length": 48, "save_steps": None, **overrides}))


BASE = Base(**profile_values("base", seed=7, vocab_size=300))


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
        logs_dir=root / f"logs-{models_name}", checkpoints_dir=root / f"checkpoints-{models_name}",
        metrics_dir=root / f"metrics-{models_name}",
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
    train = Train(**profile_values("train", scale="paper"))  # the original: unsloth, 4-bit, fp16, paged AdamW 8-bit
    assert (train.per_device_train_batch_size, train.world_size) == (8, 2)
    assert train.global_batch_size == 16 and train.gradient_accumulation_steps == 2
    assert planned_steps(4500, train) == 282 and warmup_steps(282, train.warmup_ratio) == 15
    assert planned_steps(18000, train) == 1125
    assert planned_steps(500, train) == 32 and warmup_steps(32, 0.05) == 2  # the logged 500-row run
    assert planned_steps(4500, train.model_copy(update={"max_steps": 5})) == 5
    for rows in (1, 15, 16, 17, 37, 4088):
        assert planned_steps(rows, train) == math.ceil(rows / 16)
    two = Train(**profile_values("train", scale="paper", processes=2))
    assert two.global_batch_size == 16 and two.gradient_accumulation_steps == 1  # the original: DDP, no accumulation
    for rows in (1, 15, 16, 17, 37, 4088, 4500, 18000):
        assert planned_steps(rows, two) == planned_steps(rows, train)


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
    with pytest.raises(ValidationError, match="backend unsloth is the original's 4-bit path"):
        Train(**profile_values("train", scale="paper", load_in_4bit=False))


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
        f"Train.model_validate_json({tiny_train().model_dump_json()!r}), "
        f"Base.model_validate_json({BASE.model_dump_json()!r}), "
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


# --------------------------------------------------------------------------- checkpoints and resume

KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from transformers import TrainerCallback
from stages.lib.params import Base, Run, Train
from stages.train import train_run

class Kill(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: as a killed job dies

train_run({run_id!r}, Run(condition=1, data_lang='en', tier='tiny', seed=42, dataset={dataset!r}),
    Train.model_validate_json({train!r}),
    Base.model_validate_json({base!r}),
    base_dir=Path({base_dir!r}), data_dir=Path({data!r}), models_dir=Path(sys.argv[1]), logs_dir=None,
    checkpoints_dir=Path(sys.argv[2]), callbacks=(Kill(),))
"""


def test_killed_run_resumes_to_the_same_bytes(first, workspace, repo_root):
    """SIGKILL after the step-2 checkpoint, rerun: it resumes there and writes the uninterrupted bytes."""
    import subprocess
    import sys

    root, data, base_dir = workspace
    models, checkpoints = root / "models-killed", root / "checkpoints-killed"
    script = KILL_SCRIPT.format(run_id=RUN_ID, dataset=DATASET, base_dir=str(base_dir), data=str(data),
                                train=tiny_train(save_steps=1).model_dump_json(), base=BASE.model_dump_json())
    done = subprocess.run(
        [sys.executable, "-c", script, str(models), str(checkpoints), "2"], cwd=repo_root, capture_output=True
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert not (models / "tiny-aya-base" / RUN_ID).exists()
    (fingerprint_dir,) = (checkpoints / RUN_ID).iterdir()
    assert last_checkpoint(fingerprint_dir).name == "checkpoint-2"

    out = train_run(
        RUN_ID, run_for(42), tiny_train(save_steps=1), BASE, base_dir=base_dir, data_dir=data, models_dir=models,
        logs_dir=root / "logs-killed", checkpoints_dir=checkpoints, metrics_dir=root / "metrics-killed",
    )
    log = json.loads((root / "logs-killed" / f"train-{RUN_ID}.json").read_text())
    assert log["resumed_from"] == "checkpoint-2"
    _, out_a = first
    for name in ("adapter_model.safetensors", "training_metrics.json", "adapter_config.json"):
        assert (out / name).read_bytes() == (out_a / name).read_bytes(), name
    assert (root / "metrics-killed" / RUN_ID / "loss.tsv").read_bytes() == (
        root / "metrics-models-a" / RUN_ID / "loss.tsv"
    ).read_bytes()
    assert not (checkpoints / RUN_ID).exists()  # removed after success


def test_uninterrupted_run_with_checkpoints_cleans_up(first, workspace):
    root = workspace[0]
    stale = root / "checkpoints-models-ckpt" / RUN_ID / "0123456789abcdef" / "checkpoint-1"
    stale.mkdir(parents=True)
    _, out = train_into(workspace, "models-ckpt", save_steps=1)
    log = json.loads((root / "logs-models-ckpt" / f"train-{RUN_ID}.json").read_text())
    assert log["resumed_from"] is None
    assert not (root / "checkpoints-models-ckpt" / RUN_ID).exists()
    _, out_a = first
    for name in ("adapter_model.safetensors", "training_metrics.json"):
        assert (out / name).read_bytes() == (out_a / name).read_bytes(), name


def test_checkpoints_of_other_params_are_never_resumed(tmp_path):
    resolved = {"run_id": RUN_ID, "train": tiny_train(save_steps=2).model_dump(mode="json"), "dataset": {"sha256": "a"}}
    same = checkpoint_fingerprint({**resolved, "train": tiny_train(save_steps=4).model_dump(mode="json")})
    assert checkpoint_fingerprint(resolved) == same  # the interval alone does not change the bytes
    for changed in (
        {**resolved, "train": tiny_train(save_steps=2, learning_rate=1e-4).model_dump(mode="json")},
        {**resolved, "dataset": {"sha256": "b"}},
    ):
        assert checkpoint_fingerprint(changed) != same
    old = checkpoint_dir(tmp_path, RUN_ID, "f" * 64)
    (old / "checkpoint-3").mkdir()
    new = checkpoint_dir(tmp_path, RUN_ID, same)
    assert [p.name for p in (tmp_path / RUN_ID).iterdir()] == [same[:16]] and last_checkpoint(new) is None


def test_last_checkpoint_skips_an_incomplete_save(tmp_path):
    files = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors", "rng_state.pth")
    for step, complete in ((2, True), (4, True), (6, False), (10, True)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("x")
        if complete:
            (folder / LOSS_TOTAL_FILE).write_text("{}")
    (tmp_path / "checkpoint-10" / "optimizer.pt").unlink()
    assert last_checkpoint(tmp_path).name == "checkpoint-4"  # numeric order, not "10" < "4"


def test_save_steps_must_be_a_multiple_of_logging_steps():
    assert tiny_train(logging_steps=5, save_steps=10).save_steps == 10
    with pytest.raises(ValidationError):
        tiny_train(logging_steps=10, save_steps=15)
    with pytest.raises(ValidationError):
        tiny_train(save_steps=0)


def test_loss_curve_for_dvc_plots(first, workspace):
    lines = (workspace[0] / "metrics-models-a" / RUN_ID / "loss.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["step", "epoch", "loss", "grad_norm", "learning_rate"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [int(row[0]) for row in rows] == [1, 2, 3] and all(float(row[2]) > 0 for row in rows)


class CurveProbe:
    """Reads loss.tsv at every logged step, while the Trainer is still running (a TrainerCallback)."""

    def __init__(self, path):
        from transformers import TrainerCallback

        probe = self

        class Probe(TrainerCallback):
            def on_log(self, args, state, control, **kwargs):
                probe.seen[state.global_step] = path.read_text() if path.exists() else None

        self.seen: dict[int, str | None] = {}
        self.callback = Probe()


def test_loss_curve_is_written_while_training_runs(first, workspace):
    """Issue 22: after step k the file holds rows 1..k, flushed, before the run ends; the finished file
    is the log history's loss rows, byte-identical to another run's."""
    from stages.lib.train_log import loss_curve_text

    root, data, base_dir = workspace
    curve = root / "metrics-live" / RUN_ID / "loss.tsv"
    probe = CurveProbe(curve)
    train_run(
        RUN_ID, run_for(42), tiny_train(), BASE, base_dir=base_dir, data_dir=data, models_dir=root / "models-live",
        logs_dir=None, metrics_dir=root / "metrics-live", callbacks=(probe.callback,),
    )
    header = "step\tepoch\tloss\tgrad_norm\tlearning_rate"
    assert sorted(probe.seen) == [1, 2, 3]
    for step, text in probe.seen.items():
        lines = text.splitlines()
        assert lines[0] == header and [int(line.split("\t")[0]) for line in lines[1:]] == list(range(1, step + 1))
    assert probe.seen[2] != curve.read_text() and curve.read_text().startswith(probe.seen[2])
    finished = curve.read_bytes()
    assert finished == (root / "metrics-models-a" / RUN_ID / "loss.tsv").read_bytes()  # two runs, one set of bytes
    history = json.loads((root / "models-live" / "tiny-aya-base" / RUN_ID / "training_metrics.json").read_text())
    assert finished.decode() == loss_curve_text(history["log_history"])
    assert not CLOCK.search(finished.decode()) and str(root) not in finished.decode()  # no time, no path


LOG_KILL_SCRIPT = KILL_SCRIPT.replace("def on_save(", "def on_log(").replace(
    "callbacks=(Kill(),))", "metrics_dir=Path(sys.argv[4]), callbacks=(Kill(),))")


def test_a_resumed_run_drops_the_rows_its_checkpoint_lacks(first, workspace, repo_root):
    """Killed after logging step 3 with the last checkpoint at step 2: the rerun resumes at 2, rewrites the
    curve from the checkpoint's history (rows 1-2) and appends 3 once; the file equals an uninterrupted run's."""
    import subprocess
    import sys

    root, data, base_dir = workspace
    models, checkpoints, metrics = root / "models-logkill", root / "checkpoints-logkill", root / "metrics-logkill"
    script = LOG_KILL_SCRIPT.format(run_id=RUN_ID, dataset=DATASET, base_dir=str(base_dir), data=str(data),
                                    train=tiny_train(save_steps=2).model_dump_json(), base=BASE.model_dump_json())
    done = subprocess.run([sys.executable, "-c", script, str(models), str(checkpoints), "3", str(metrics)],
                          cwd=repo_root, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    curve = metrics / RUN_ID / "loss.tsv"
    assert [line.split("\t")[0] for line in curve.read_text().splitlines()[1:]] == ["1", "2", "3"]
    train_run(
        RUN_ID, run_for(42), tiny_train(save_steps=2), BASE, base_dir=base_dir, data_dir=data, models_dir=models,
        logs_dir=root / "logs-logkill", checkpoints_dir=checkpoints, metrics_dir=metrics,
    )
    assert json.loads((root / "logs-logkill" / f"train-{RUN_ID}.json").read_text())["resumed_from"] == "checkpoint-2"
    assert curve.read_bytes() == (root / "metrics-models-a" / RUN_ID / "loss.tsv").read_bytes()


def test_phase2_flat_layout(tmp_path):
    assert adapter_folder(tmp_path, tiny_train(), "x-seed42") == tmp_path / "tiny-aya-base" / "x-seed42"
    assert adapter_folder(tmp_path, tiny_train(adapters_dir="models"), "condition-2-zh-5k") == tmp_path / "condition-2-zh-5k"
    for bad in ("models/base", "adapters", "models/a/b", "models/../x", "/models"):
        with pytest.raises(ValidationError):
            tiny_train(adapters_dir=bad)


# --------------------------------------------------------------------------- more than one process

EVEN_DATASET = "condition-1-en-even"
EVEN_RUN = "condition-1-en-even-seed42"
DDP_SCRIPT = """
import os, signal, sys
from pathlib import Path
from transformers import TrainerCallback
from stages.lib.params import Base, Run, Train
from stages.train import train_run

class Kill(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ.get('KILL_AT', 0)) and state.is_world_process_zero:
            os.kill(os.getpid(), signal.SIGKILL)  # torchrun then stops the other rank

root = Path(sys.argv[1])
train_run({run_id!r}, Run(condition=1, data_lang='en', tier='tiny', seed=42, dataset={dataset!r}),
    Train.model_validate_json({train!r}),
    Base.model_validate_json({base!r}),
    base_dir=Path({base_dir!r}), data_dir=Path({data!r}), models_dir=root / 'models', logs_dir=root / 'logs',
    checkpoints_dir=root / 'logs' / 'checkpoints', metrics_dir=root / 'metrics', callbacks=(Kill(),))
"""


def test_torchrun_two_processes_match_one_process_accumulation(workspace, repo_root, tmp_path):
    """DDP over 2 gloo processes (batch 8 each) against one process accumulating 2 micro-batches of 8.

    The same 16 rows make each step and the loss is the token mean over them either way, so the
    loss curves agree; stated tolerance 1e-5 nats (on this machine they agree to the bit). The
    DDP run is killed after its step-2 checkpoint and resumed from it. Only rank 0 writes: one
    adapter folder of the usual layout, one log, one loss curve.
    """
    import os
    import subprocess
    import sys

    root, data, base_dir = workspace
    rows = [  # 64 rows: 4 full global batches, so DDP pads nothing (see the train module's docstring)
        {"code": SNIPPETS[i % len(SNIPPETS)] * (1 + i % 5) + f"# even {i}\n", "code_en": SNIPPETS[i % len(SNIPPETS)],
         "language": "en", "file_path": f"{i:03d}.py", "license": "MIT", "idx": i, "token_count": 0}
        for i in range(64)
    ]
    write_parquet(split_path(data / EVEN_DATASET, "train"), rows, PACKAGED_SCHEMA)
    run = Run(condition=1, data_lang="en", tier="tiny", seed=42, dataset=EVEN_DATASET)
    single = tmp_path / "single"
    train_run(
        EVEN_RUN, run, tiny_train(learning_rate=1e-2), BASE, base_dir=base_dir, data_dir=data,
        models_dir=single / "models", logs_dir=single / "logs", metrics_dir=single / "metrics",
    )
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(
        run_id=EVEN_RUN, dataset=EVEN_DATASET, base_dir=str(base_dir), data=str(data), base=BASE.model_dump_json(),
        train=tiny_train(learning_rate=1e-2, processes=2, save_steps=2).model_dump_json()))
    ddp = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(ddp)]
    killed = subprocess.run(command, cwd=repo_root, env={**os.environ, "OMP_NUM_THREADS": "1", "KILL_AT": "2"},
                            capture_output=True, text=True)
    assert killed.returncode != 0 and not (ddp / "models").exists()
    (saved,) = (ddp / "logs" / "checkpoints" / EVEN_RUN).glob("*/checkpoint-2")
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in saved.iterdir()}  # every rank's RNG
    done = subprocess.run(command, cwd=repo_root, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((ddp / "logs" / f"train-{EVEN_RUN}.json").read_text())["resumed_from"] == "checkpoint-2"

    def curve(folder):
        lines = (folder / "metrics" / EVEN_RUN / "loss.tsv").read_text().splitlines()[1:]
        return [(int(line.split("\t")[0]), float(line.split("\t")[2])) for line in lines]

    one, two = curve(single), curve(ddp)
    assert [step for step, _ in one] == [step for step, _ in two] == [1, 2, 3, 4]
    assert max(abs(a - b) for (_, a), (_, b) in zip(one, two)) <= 1e-5
    assert one[0][1] - one[-1][1] > 100 * 1e-5  # the curve moves far more than the tolerance

    out_one = single / "models" / "tiny-aya-base" / EVEN_RUN
    out_two = ddp / "models" / "tiny-aya-base" / EVEN_RUN
    assert {p.name for p in out_two.iterdir()} == {p.name for p in out_one.iterdir()} == RUN_FILES
    assert sorted(p.relative_to(ddp).as_posix() for p in ddp.rglob("*") if p.is_file()) == sorted([
        *(f"models/tiny-aya-base/{EVEN_RUN}/{name}" for name in RUN_FILES),
        f"metrics/{EVEN_RUN}/loss.tsv", f"metrics/{EVEN_RUN}/summary.json", f"logs/train-{EVEN_RUN}.json",
    ])  # one writer; the checkpoints (every 2 steps, both ranks' RNG states) are gone after success
    data_one = json.loads((out_one / "training_metrics.json").read_text())["data"]
    data_two = json.loads((out_two / "training_metrics.json").read_text())["data"]
    assert (data_one["processes"], data_one["gradient_accumulation_steps"]) == (1, 2)
    assert (data_two["processes"], data_two["gradient_accumulation_steps"]) == (2, 1)
    assert data_one["global_batch_size"] == data_two["global_batch_size"] == 16
    assert data_one["steps"] == data_two["steps"] == 4


def test_processes_must_divide_the_world_size():
    with pytest.raises(ValidationError, match="processes 3 must divide world_size 2"):
        tiny_train(processes=3)


def test_a_process_of_another_world_is_refused(workspace, tmp_path, monkeypatch):
    """Started by hand under torchrun with a world size params does not say: refused before any work."""
    root, data, base_dir = workspace
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(TrainError, match="train.processes is 1 but this is one of 4 processes"):
        train_run(RUN_ID, run_for(42), tiny_train(), BASE, base_dir=base_dir, data_dir=data, models_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_the_stage_command_relaunches_itself_under_torchrun():
    command = torchrun_command(2, ["--run", RUN_ID])
    assert command[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "stages.train", "--run", RUN_ID,
    ]
