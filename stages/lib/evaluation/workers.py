"""Worker processes of one evaluation session.

More than one process (``evaluate.processes``): the session's cells are dealt to that many
worker processes (``evaluate.split_by``: round-robin by block of cells, or one template wording per
worker as the original ran one template per GPU), each with one GPU where there are GPUs.
Each worker writes its finished cells into the resume folder; this process then writes the
outputs from there, exactly as after a resume, so the files are byte-identical to a
one-process run (every batch lies within one block, and a block within one worker). A failed worker loses none of the cells
it or the others finished: rerunning resumes them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import yaml

from stages.lib.evaluation import EvaluateError
from stages.lib.evaluation.grid import Job
from stages.lib.params import Evaluate, Params

def worker_blocks(packed: Sequence[Sequence[Job]], evaluate: Evaluate, worker: int) -> list[Sequence[Job]]:
    """The blocks of cells (stages/lib/evaluation/blocks.py) worker ``worker`` of ``evaluate.processes``
    scores: dealt round-robin, by block (``split_by: cell``) or by wording. Whole blocks, so that every
    prompt is generated in the batch a one-process run generates it in."""
    if evaluate.split_by == "template":
        wordings = list(dict.fromkeys(block[0].wording for block in packed))
        return [block for block in packed if wordings.index(block[0].wording) % evaluate.processes == worker]
    return [block for index, block in enumerate(packed) if index % evaluate.processes == worker]


def parse_worker(value: str) -> tuple[int, int]:
    """``--worker I/N``: this process is worker I (from 0) of N."""
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--worker {value!r}: expected I/N, e.g. 0/2") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--worker {value!r}: I must be in 0..N-1")
    return index, count


def visible_gpus() -> list[str]:
    """The GPUs the workers are spread over: CUDA_VISIBLE_DEVICES, else every device torch sees (none on CPU)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu for gpu in listed.split(",") if gpu.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def run_workers(params: Params, session_id: str, scratch: Path, resume_root: Path, base_dir: Path, models_dir: Path,
                train_metrics: Path) -> None:
    """Start ``evaluate.processes`` workers on this session's cells and wait for all of them.

    The workers read the params this process resolved (written into the resume folder), so they
    score exactly the cells this process would; worker I gets GPU I mod the GPU count.
    """
    count = params.evaluate.processes
    params_file = scratch / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    gpus = visible_gpus()
    workers = []
    for index in range(count):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        command = [
            sys.executable, "-m", "stages.evaluate", "--session", session_id, "--worker", f"{index}/{count}",
            "--params", str(params_file), "--base", str(base_dir), "--models", str(models_dir),
            "--train-metrics", str(train_metrics),
            "--resume-root", str(resume_root), "--no-progress",
        ]
        workers.append(subprocess.Popen(command, env=env))
    failed = [(index, worker.wait()) for index, worker in enumerate(workers)]
    failed = [(index, code) for index, code in failed if code != 0]
    if failed:
        named = ", ".join(f"worker {index}/{count} (exit {code})" for index, code in failed)
        raise EvaluateError(
            f"{session_id}: {named} failed (its messages are above); every cell finished so far is kept in "
            f"{scratch}: run the stage again to resume"
        )

