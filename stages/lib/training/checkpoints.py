"""Checkpoints and resuming a killed training run (``train.save_steps``; null = none).

Every ``save_steps`` optimizer steps the Trainer writes a full checkpoint (adapter, optimizer,
scheduler, RNG states, the trainer state with the log history so far) to
``logs/checkpoints/<run id>/<fingerprint>/``: scratch space, never a DVC output (DVC deletes a
stage's outputs before it reruns it). The fingerprint is the sha256 of everything that decides the
bytes: the run, the train params (all but ``save_steps``), the base's identity, the dataset's
sha256, the python and package versions. A rerun of a killed run resumes from the newest complete
checkpoint of the same fingerprint (the Trainer's ``resume_from_checkpoint``: it restores the
weights, AdamW moments, the schedule, the python/numpy/torch RNG states and skips the batches
already seen in the seeded data order; the running loss sum behind ``train_loss``, which the
Trainer resets on a resume, is restored by stages/lib/hf_patches.py's ``loss_total_callback``) and
deletes checkpoints of any other fingerprint, so a checkpoint of other params or data is never
resumed. After success the run's checkpoints are removed. On CPU (``peft-cpu``) the resumed run
writes the same ``adapter_model.safetensors`` and ``training_metrics.json`` bytes as an
uninterrupted one (tests/test_train.py kills a run in a subprocess after a checkpoint and
compares). ``save_steps`` must be a multiple of ``logging_steps``: the loss accumulated since the
last log is not in a checkpoint. Whether the run resumed, and from which step, goes to the
uncached ``logs/train-<run id>.json`` only. On a GPU a resumed run is as (in)exact as any GPU run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stages.lib.fingerprint import code_fingerprint, record_sha256
from stages.lib.hf_patches import LOSS_TOTAL_FILE
from stages.lib.numerics import cpu_numerics
from stages.lib.provenance import content_provenance
from stages.lib.training.backends import train_packages
from stages.lib.training.ddp import distributed_rank

CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors", LOSS_TOTAL_FILE)


def checkpoint_fingerprint(resolved: dict) -> str:
    """sha256 of what decides the bytes (run, params but save_steps, base, dataset, versions, the CPU
    numerics: a checkpoint made under other kernels is not resumed, and the code: stage module and its
    project imports, stages.lib.fingerprint). Checkpoints are no DVC output, so no output holds it."""
    train = {k: v for k, v in resolved["train"].items() if k != "save_steps"}
    packages = train_packages(train["backend"])
    content = {**content_provenance("train", {**resolved, "train": train}, packages=packages),
               "cpu_numerics": cpu_numerics(),
               "code": code_fingerprint("stages.train", packages)}
    return record_sha256(content)


def checkpoint_dir(root: Path, run_id: str, fingerprint: str) -> Path:
    """``root/<run_id>/<fingerprint[:16]>``; checkpoints of any other fingerprint are deleted (by rank 0)."""
    run_root = root / run_id
    folder = run_root / fingerprint[:16]
    if run_root.is_dir() and distributed_rank()[0] == 0:
        for stale in run_root.iterdir():
            if stale != folder:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def last_checkpoint(folder: Path, processes: int = 1) -> Path | None:
    """The newest ``checkpoint-<step>`` with every file a resume reads (a kill mid-save leaves one without).

    Under DDP every rank saves its own ``rng_state_<rank>.pth``; one process saves ``rng_state.pth``.
    """
    rng_files = ["rng_state.pth"] if processes == 1 else [f"rng_state_{rank}.pth" for rank in range(processes)]
    found = []
    for path in folder.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        has_rng = all((path / name).is_file() for name in rng_files)
        if step.isdigit() and has_rng and all((path / name).is_file() for name in CHECKPOINT_FILES):
            found.append((int(step), path))
    return max(found)[1] if found else None

