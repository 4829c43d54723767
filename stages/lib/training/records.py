"""What the train stage records beside an adapter: run_config.json's content, the per-run summary,
and the wall-clock fields kept out of every file that must rebuild byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stages.lib.params import Base, Run, Train
from stages.lib.provenance import file_sha256

# keys of trainer metrics and log entries that measure time or speed, never content
WALL_CLOCK_KEY = re.compile(r"(runtime|per_second|_time$|^time|timestamp|_seconds$|^wall)", re.IGNORECASE)


def strip_wall_clock(record: dict) -> tuple[dict, dict]:
    """(content, timing): the keys that measure time or speed moved out of ``record``."""
    content = {k: v for k, v in record.items() if not WALL_CLOCK_KEY.search(k)}
    timing = {k: v for k, v in record.items() if WALL_CLOCK_KEY.search(k)}
    return content, timing


def resolved_config(
    run_id: str, run: Run, train: Train, base: Base, base_dir: Path, data_path: Path, steps: int, warmup: int
) -> dict:
    """What run_config.json records, and what the checkpoint fingerprint hashes."""
    return {
        "run_id": run_id,
        "run": run.model_dump(mode="json"),
        "seed": run.seed,
        "train": train.model_dump(mode="json"),
        "derived": {
            "global_batch_size": train.global_batch_size,
            "gradient_accumulation_steps": train.gradient_accumulation_steps,
            "steps": steps,
            "warmup_steps": warmup,
        },
        "base": base_identity(base, base_dir),
        "dataset": {"name": run.dataset, "split": "train", "path": data_path.as_posix(), "sha256": file_sha256(data_path)},
    }


def base_identity(base: Base, base_dir: Path) -> dict:
    """What decides the base: the sha256 of the tiny model's files, or the Hub repo at its revision."""
    identity: dict[str, Any] = {"kind": base.kind}
    if base.kind == "tiny":
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            path = base_dir / name
            identity[f"{name}_sha256"] = file_sha256(path) if path.is_file() else None
    else:
        identity.update(repo=base.repo, revision=base.revision)
        path = base_dir / "tokenizer.json"
        identity["tokenizer.json_sha256"] = file_sha256(path) if path.is_file() else None
    return identity


def run_summary(run_id: str, out: Path, models_dir: Path, train_result: dict, data: dict) -> dict:
    """A small per-run record beside the loss curve: the adapter's hashes and the headline numbers.

    ``metrics/train`` is what the manifest stage depends on: a dependency on the adapters'
    parent folder would hold the manifest itself in Phase 2's flat layout (models/<run>/).
    """
    return {
        "run_id": run_id,
        "path": out.relative_to(models_dir).as_posix(),
        "adapter_model_sha256": file_sha256(out / "adapter_model.safetensors"),
        "adapter_config_sha256": file_sha256(out / "adapter_config.json"),
        "train_loss": train_result.get("train_loss"),
        "steps": data["steps"],
        "rows": data["rows"],
        "tokens": data["tokens"],
    }

