"""train: one LoRA adapter per run of the grid, as the study trained it.

    python -m stages.train --run condition-2-zh-5k-seed42     # dvc.yaml: train@condition-2-zh-5k-seed42

Reads the ``train`` split of ``data/packaged/<run.dataset>/`` (the validation split is never
used, as in the original), the tokenizer the base stage saved in ``models/base`` and the base
model (smoke: the tiny ``Cohere2ForCausalLM`` in ``models/base``; paper: ``base.repo`` at
``base.revision`` from the Hugging Face cache). Writes ``<train.adapters_dir>/<run id>/``
(``models/tiny-aya-base/<run id>/`` in Phase 3; Phase 2 uses the card's flat
``models/<run id>/``, e.g. ``models/condition-2-zh-5k/``):

- ``adapter_config.json``, ``adapter_model.safetensors`` (PEFT's ``save_pretrained``, safetensors
  only), loadable as the seed card shows:
  ``PeftModel.from_pretrained(base, "models", subfolder="tiny-aya-base/<run id>")``;
- ``training_metrics.json``: the original's ``{model_config_name, condition_name, seed,
  output_name, train_result, log_history}`` plus ``data`` (rows, tokens, steps, warmup, batch),
  with every wall-clock field (``train_runtime``, ``*_per_second``) removed so that a rerun
  writes the same bytes; those fields go to the uncached ``logs/train-<run id>.json``;
- ``run_config.json``: the resolved train and base params, the run, its seed, the dataset's
  sha256, the base's identity and package versions;
- ``provenance.json``: the same content provenance plus the git commit;

and ``metrics/train/<run id>/``: ``loss.tsv`` (step, epoch, loss, grad_norm, learning_rate: the
logged loss curve, appended at every logging step while the run trains, stages/lib/train_log.py;
a ``dvc plots`` source) and ``summary.json`` (the adapter's sha256, the train loss, steps, rows,
tokens; a DVC metric, and what the manifest stage depends on). Progress bars show in a terminal
only (stages/lib/progress.py).

What is reproduced of the original's training (its ``training/scripts/qlora.ipynb`` and
``training/configs/tiny-aya-base.yml``; the paper profile's values in stages/profiles/paper.yaml):

- each file is one example: ``tokenizer(code, truncation=True, max_length=max_seq_length)`` with
  the tokenizer's default special tokens, no padding, no packing (the original configured
  ``packing=True``, but its custom collator made Unsloth skip packing);
  ``DataCollatorForLanguageModeling(mlm=False)`` pads each batch to its longest row and masks
  the padding out of the labels;
- seeds: ``set_seed(seed)``, the LoRA initialisation under that seed (Unsloth:
  ``random_state=seed``), and the trainer's ``seed`` and ``data_seed`` = the run's seed;
- the batch: the global batch is per_device x world_size = 16 and steps = ceil(rows / 16) (282
  for the 4,500-row 5k split), trained by ``train.processes`` processes (1: accumulating micro-batches of 8; 2: DDP under
  torchrun as the original ran, stages/lib/training/ddp.py).
  The micro-batches of one step are the same 16 rows of the same shuffled order that the
  ranks split between them (accelerate hands consecutive batches of the sampler to the
  ranks), and the loss is the token mean over all 16 rows in both cases
  (``average_tokens_across_devices`` vs. ``num_items_in_batch`` across accumulation), so the
  loss curves agree to float rounding (tests/test_train.py). One difference is the
  original's: when rows are not a multiple of 16, DDP pads the last step with rows from the
  start of the epoch (accelerate's ``even_batches``), where one process takes a short step.
  Only rank 0 writes the adapter, metrics and logs;
- warmup steps = ceil(warmup_ratio x steps), computed here and passed as ``warmup_steps``
  (15 for 282 steps), cosine decay, AdamW with weight decay 0.01, max grad norm 1.0.

The backends (``train.backend``: ``peft-cpu``, ``peft-bnb``, ``unsloth``) are in
stages/lib/training/backends.py; checkpoints and resuming a killed run (``train.save_steps``) in
stages/lib/training/checkpoints.py; the torchrun relaunch and one GPU per process in
stages/lib/training/ddp.py; the workarounds for the pinned transformers and PEFT in
stages/lib/hf_patches.py. The tokenizer is ``models/base/tokenizer.json`` run by its own
pipeline (stages/lib/loading.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stages.lib.errors import exit_stage
from stages.lib.hf_patches import loss_total_callback, normalise_adapter_config
from stages.lib.loading import load_tokenizer
from stages.lib.params import Base, ParamsError, Run, Train, load_params
from stages.lib.paths import adapter_folder
from stages.lib.progress import stage_logger
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.tables import read_rows, split_path
from stages.lib.train_log import loss_curve_callback
from stages.lib.training import TrainError
from stages.lib.training.backends import BACKENDS, import_unsloth, train_packages
from stages.lib.training.checkpoints import checkpoint_dir, checkpoint_fingerprint, last_checkpoint
from stages.lib.training.ddp import (
    check_global_batch, check_world, distributed_rank, leave_process_group, pin_one_device, torchrun_command, trainer_class,
)
from stages.lib.training.recipe import planned_steps, training_arguments, warmup_steps
from stages.lib.training.records import resolved_config, run_summary, strip_wall_clock

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


# --------------------------------------------------------------------------- data


def train_split(data_dir: Path, dataset: str) -> Path:
    path = split_path(data_dir / dataset, "train")
    if not path.is_file():
        raise TrainError(f"no training split at {path}: build it first (`dvc repro package@{dataset}`)")
    return path


def tokenize(codes: list[str], tokenizer, max_seq_length: int) -> dict[str, list[list[int]]]:
    """Each file one example: truncated to max_seq_length tokens, default special tokens, no padding."""
    encoded = tokenizer(codes, truncation=True, max_length=max_seq_length, padding=False, verbose=False)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


# --------------------------------------------------------------------------- training


def train_run(
    run_id: str,
    run: Run,
    train: Train,
    base: Base,
    *,
    base_dir: Path = Path("models/base"),
    data_dir: Path = Path("data/packaged"),
    models_dir: Path = Path("models"),
    logs_dir: Path | None = Path("logs"),
    checkpoints_dir: Path | None = None,
    metrics_dir: Path | None = None,
    callbacks: tuple = (),
) -> Path:
    """Train one run's adapter into ``<models_dir>/<adapters_dir minus models/>/<run_id>/``; returns that folder.

    ``checkpoints_dir`` None keeps checkpoints (if ``save_steps`` asks for them) in a temporary
    folder: no resume. ``callbacks`` are extra ``TrainerCallback``s (the tests' kill switch).
    Under torchrun (``train.processes`` > 1) every rank trains its share of each global batch
    and only rank 0 writes; the other ranks return None.
    """
    check_world(train)  # one GPU per process: main() pins it (pin_one_device), check_global_batch verifies it
    if train.backend == "unsloth":
        import_unsloth()  # before transformers: Unsloth patches it on import and warns when it comes second
    rank = distributed_rank()[0]
    data_path = train_split(data_dir, run.dataset)
    if not (base_dir / "tokenizer.json").is_file() and not (base_dir / "tokenizer_config.json").is_file():
        raise TrainError(f"no tokenizer in {base_dir}: build it first (`dvc repro base`)")

    import torch
    from transformers import DataCollatorForLanguageModeling, set_seed
    from datasets import Dataset

    deterministic = torch.are_deterministic_algorithms_enabled()
    if train.backend == "peft-cpu":
        torch.use_deterministic_algorithms(True)  # restored below: a library call must not leak global state
    threads = torch.get_num_threads()
    try:
        tokenizer = load_tokenizer(base_dir)  # tokenizer.json's own pipeline (stages/lib/loading.py)
        if tokenizer.pad_token is None:  # the collator pads; padded positions are masked out of the loss
            tokenizer.pad_token = tokenizer.eos_token
        codes = [row["code"] for row in read_rows(data_path, ["code"])]
        features = tokenize(codes, tokenizer, train.max_seq_length)
        rows = len(codes)
        tokens = sum(len(ids) for ids in features["input_ids"])
        steps = planned_steps(rows, train)
        warmup = warmup_steps(steps, train.warmup_ratio)
        resolved = resolved_config(run_id, run, train, base, base_dir, data_path, steps, warmup)

        set_seed(run.seed)
        model = BACKENDS[train.backend](train, base, base_dir, run.seed)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

        dataset = Dataset.from_dict(features)
        collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)
        with tempfile.TemporaryDirectory(prefix=f"train-{run_id}-") as work:
            resume_from = None
            work_dir = Path(work)
            if train.save_steps is not None and checkpoints_dir is not None:
                work_dir = checkpoint_dir(checkpoints_dir, run_id, checkpoint_fingerprint(resolved))
                resume_from = last_checkpoint(work_dir, train.processes)
            loss_total = loss_total_callback(resume_from)
            if metrics_dir is not None:  # the loss curve, row by row as the steps are logged
                callbacks = (loss_curve_callback(metrics_dir / run_id / "loss.tsv"), *callbacks)
            trainer = trainer_class()(
                model=model,
                args=training_arguments(train, run.seed, steps, work_dir),
                train_dataset=dataset,
                data_collator=collator,
                callbacks=[loss_total, *callbacks],  # the loss sum first: a kill in on_save leaves it written
            )
            loss_total.trainer = trainer
            check_global_batch(trainer, train)
            started = time.time()
            result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            elapsed = time.time() - started
            log_history = list(trainer.state.log_history)
            global_step = trainer.state.global_step
        if global_step != steps:
            raise TrainError(f"trained {global_step} steps, planned {steps}")
        if rank != 0:
            return None

        out = adapter_folder(models_dir, train, run_id)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        model.save_pretrained(out, safe_serialization=True)
        for extra in sorted(out.iterdir()):  # PEFT's README.md card: the manifest stage writes the one card, models/README.md
            if extra.name not in ADAPTER_FILES:
                extra.unlink() if extra.is_file() else shutil.rmtree(extra)
        missing = [name for name in ADAPTER_FILES if not (out / name).is_file()]
        if missing:
            raise TrainError(f"the backend wrote no {', '.join(missing)} in {out}")
        normalise_adapter_config(out / "adapter_config.json")
    finally:
        torch.use_deterministic_algorithms(deterministic)

    train_result, timing = strip_wall_clock(dict(result.metrics))
    history, history_timing = [], []
    for entry in log_history:
        content, clock = strip_wall_clock(entry)
        history.append(content)
        if clock:
            history_timing.append({"step": entry.get("step"), **clock})
    data = {
        "split": "train",
        "rows": rows,
        "tokens": tokens,
        "steps": steps,
        "warmup_steps": warmup,
        "per_device_train_batch_size": train.per_device_train_batch_size,
        "world_size": train.world_size,
        "processes": train.processes,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "global_batch_size": train.global_batch_size,
        "trainable_parameters": trainable,
    }
    write_json(
        out / "training_metrics.json",
        {
            "model_config_name": train.model_name,
            "condition_name": run.dataset,
            "seed": run.seed,
            "output_name": run_id,
            "train_result": train_result,
            "log_history": history,
            "data": data,
        },
    )
    record = content_provenance("train", resolved, packages=train_packages(resolved["train"]["backend"]))
    write_json(out / "run_config.json", record)
    write_provenance(out, "train", resolved)
    if metrics_dir is not None:
        write_json(metrics_dir / run_id / "summary.json", run_summary(run_id, out, models_dir, train_result, data))
    if train.save_steps is not None and checkpoints_dir is not None:
        shutil.rmtree(checkpoints_dir / run_id, ignore_errors=True)  # done: nothing left to resume
    if logs_dir is not None:
        write_json(
            logs_dir / f"train-{run_id}.json",
            {
                "run_id": run_id,
                "started_unix": started,
                "wall_seconds": elapsed,
                "resumed_from": resume_from.name if resume_from else None,
                "train_result_timing": timing,
                "log_history_timing": history_timing,
                "torch_threads": threads,
            },
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run id of params.yaml's runs")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", default="models/base", help="the base stage's folder (tokenizer; smoke: the model)")
    parser.add_argument("--data", default="data/packaged", help="the packaged datasets")
    parser.add_argument("--models", default="models", help="the models/ folder; adapters go to train.adapters_dir/<run>/")
    parser.add_argument("--logs", default="logs", help="the uncached timing log and logs/checkpoints/<run>/ go here")
    parser.add_argument("--metrics", default="metrics/train", help="the loss curve goes to <metrics>/<run>/loss.tsv")
    args = parser.parse_args(argv)
    log = stage_logger(f"train@{args.run}")
    try:
        params = load_params(args.params)
        if args.run not in params.runs:
            raise TrainError(f"no run {args.run!r} in {args.params} (runs: {', '.join(sorted(params.runs))})")
        pin_one_device(params.train)  # before torch sees CUDA
        if params.train.processes > 1 and "LOCAL_RANK" not in os.environ:
            # the same stage command at any world size: torchrun starts train.processes copies of it
            return subprocess.call(torchrun_command(params.train.processes, sys.argv[1:] if argv is None else argv))
        started = time.time()
        out = train_run(
            args.run,
            params.runs[args.run],
            params.train,
            params.base,
            base_dir=Path(args.base),
            data_dir=Path(args.data),
            models_dir=Path(args.models),
            logs_dir=Path(args.logs),
            checkpoints_dir=Path(args.logs) / "checkpoints",
            metrics_dir=Path(args.metrics),
        )
    except (TrainError, ParamsError, OSError) as error:
        log.error("%s", error)
        return 2
    finally:
        leave_process_group()
    if out is None:  # a rank other than 0: rank 0 reports
        return 0
    metrics = json.loads((out / "training_metrics.json").read_text(encoding="utf-8"))
    log.info(
        f"{metrics['data']['rows']} rows, {metrics['data']['steps']} steps, "
        f"loss {metrics['train_result'].get('train_loss', float('nan')):.4f} -> {out} ({time.time() - started:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    exit_stage(main)
