"""How the train stage runs as several processes (DDP) or keeps one GPU per process.

The original ran per-device batch 8 on 2 GPUs with DDP (global 16, no accumulation).
``train.processes`` is how many processes the stage trains with: with 1 it accumulates
``world_size`` micro-batches of 8 per optimizer step; with 2 it re-launches itself under
``torchrun --standalone --nproc_per_node=2`` (:func:`torchrun_command`; DDP: gloo on CPU, NCCL on
GPUs) and each rank accumulates ``world_size / processes``. A GPU backend started as one process
keeps one GPU (:func:`pin_one_device`), and every run checks the Trainer's own total batch against
the global batch before its first step (:func:`check_global_batch`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stages.lib.params import Train
from stages.lib.training import TrainError

def trainer_class():
    """The transformers Trainer, with one fix for resuming DDP on CPU.

    transformers 5.17 loads a checkpoint's optimizer state with ``map_location=args.device``
    when there is more than one process; on CPU that device is ``cpu:<rank>``, which
    ``torch.load`` cannot restore to, so a resumed gloo run died. Everything else is the
    Trainer's own (tests/test_train.py resumes a killed 2-process run).
    """
    import torch
    from transformers import Trainer

    class CpuDdpResumingTrainer(Trainer):
        def _load_optimizer_and_scheduler(self, checkpoint):
            if checkpoint is None or self.args.world_size == 1 or self.args.device.type != "cpu":
                return super()._load_optimizer_and_scheduler(checkpoint)
            folder = Path(checkpoint)
            self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
            self.lr_scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))

    return CpuDdpResumingTrainer


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process as torchrun set them; (0, 1) when started plainly."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def check_world(train: Train) -> None:
    world = distributed_rank()[1]
    if world != train.processes:
        raise TrainError(
            f"train.processes is {train.processes} but this is one of {world} processes "
            "(torchrun --nproc_per_node); set train.processes, and start the stage as `python -m stages.train`, "
            "which launches torchrun itself"
        )


def leave_process_group() -> None:
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def torchrun_command(processes: int, argv: list[str]) -> list[str]:
    """``python -m stages.train ...`` re-launched as ``torchrun --standalone --nproc_per_node=N -m stages.train ...``."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "stages.train", *argv,
    ]


def pin_one_device(train: Train, env=os.environ) -> str | None:
    """One GPU per process, set before torch sees CUDA; returns the device kept (None: nothing changed).

    With one process and several visible GPUs, transformers sets ``n_gpu`` to all of them and multiplies
    the batch by it (``TrainingArguments.train_batch_size``) while a quantised model stays on one GPU:
    the run did 141 of 282 steps with batch 8 x n_gpu. So a GPU backend started without torchrun keeps
    only the first visible GPU; under torchrun (``LOCAL_RANK``) every rank already has one device.
    """
    if train.backend == "peft-cpu" or train.processes > 1 or "LOCAL_RANK" in env:  # torchrun: a device per rank
        return None
    visible = [device.strip() for device in env.get("CUDA_VISIBLE_DEVICES", "0").split(",") if device.strip()]
    if not visible:  # CUDA_VISIBLE_DEVICES="": no GPU at all
        return None
    env["CUDA_VISIBLE_DEVICES"] = visible[0]
    return visible[0]


def check_global_batch(trainer, train: Train) -> None:
    """Before training: the Trainer's own total batch must be the recipe's global batch (16), else refuse."""
    total = trainer.get_total_train_batch_size(trainer.args)
    if total != train.global_batch_size:
        raise TrainError(
            f"the Trainer would train with a global batch of {total} (per-device {trainer.args.train_batch_size} with "
            f"n_gpu {trainer.args.n_gpu}, accumulation {trainer.args.gradient_accumulation_steps}, "
            f"{trainer.args.world_size} processes), not per_device_train_batch_size x world_size = "
            f"{train.global_batch_size}: give this process one GPU (CUDA_VISIBLE_DEVICES) or set train.processes "
            "to the GPU count; nothing was trained"
        )

