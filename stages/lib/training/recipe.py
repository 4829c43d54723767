"""The training recipe's arithmetic and the Trainer's arguments, as the original ran them.

Steps are ceil(rows / global batch) per epoch (282 for the 4,500-row 5k split at batch 16);
warmup steps = ceil(warmup_ratio x steps), computed here and passed as ``warmup_steps`` (15 for
282 steps), cosine decay, AdamW with weight decay 0.01, max grad norm 1.0.
"""

from __future__ import annotations

import math
from pathlib import Path

from stages.lib.params import Train
from stages.lib.progress import progress_enabled
from stages.lib.training import TrainError

def planned_steps(rows: int, train: Train) -> int:
    """Optimizer steps: ceil(rows / global batch) per epoch, as ``torchrun --nproc_per_node=2`` ran it.

    The Trainer counts ceil(micro-batches per process / accumulation) per epoch, where each of
    the ``processes`` ranks gets ceil(ceil(rows / per_device) / processes) micro-batches: the same number.
    """
    if rows <= 0:
        raise TrainError("the training split has no rows")
    micro_batches = math.ceil(math.ceil(rows / train.per_device_train_batch_size) / train.processes)
    per_epoch = math.ceil(micro_batches / train.gradient_accumulation_steps)
    steps = per_epoch * train.num_train_epochs
    return min(steps, train.max_steps) if train.max_steps is not None else steps


def warmup_steps(steps: int, ratio: float) -> int:
    """ceil(ratio x steps): 15 for the original's 282 steps at ratio 0.05."""
    return math.ceil(ratio * steps)


def training_arguments(train: Train, seed: int, steps: int, work_dir: Path):
    from transformers import TrainingArguments

    saving = {"save_strategy": "no"}
    if train.save_steps is not None:
        # two kept: a kill during a save leaves the previous checkpoint complete
        saving = {"save_strategy": "steps", "save_steps": train.save_steps, "save_total_limit": 2}
    distributed = {}
    if train.processes > 1:
        # gloo on CPU; NCCL (the default) on GPUs. Every LoRA matrix gets a gradient each step.
        distributed = {"ddp_find_unused_parameters": False}
        if train.backend == "peft-cpu":
            distributed["ddp_backend"] = "gloo"

    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate,
        num_train_epochs=train.num_train_epochs,
        max_steps=train.max_steps if train.max_steps is not None else -1,
        warmup_steps=warmup_steps(steps, train.warmup_ratio),
        lr_scheduler_type=train.lr_scheduler_type,
        max_grad_norm=train.max_grad_norm,
        optim=train.optim,
        weight_decay=train.weight_decay,
        fp16=train.fp16,
        bf16=False,
        logging_steps=train.logging_steps,
        logging_first_step=False,
        eval_strategy="no",
        **saving,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=train.backend == "peft-cpu",
        dataloader_num_workers=0,
        disable_tqdm=not progress_enabled(),  # bars in a terminal, none in CI and logs
        remove_unused_columns=False,
        **distributed,
    )

