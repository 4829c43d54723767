"""What every llink_* stage does around its work: read its params, stamp provenance, log timing.

The commit goes only into ``provenance.json`` (via :func:`write_provenance`), which no
downstream stage depends on; wall-clock time goes to the uncached ``logs/llink-<stage>.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from pydantic_core import to_jsonable_python

from stages.lib.params import Llink, ParamsError, load_params
from stages.lib.progress import stage_logger
from stages.lib.provenance import content_provenance, write_json, write_provenance

# the distributions whose versions decide the bytes of the llink outputs
LLINK_PACKAGES = ("datasets", "peft", "safetensors", "tokenizers", "torch", "transformers")


def provenance(stage: str, params: Any, extra: dict | None = None) -> dict:
    """Content provenance of ``params`` (a model, or a dict of models) and the llink packages."""
    return content_provenance(stage, to_jsonable_python(params), extra, LLINK_PACKAGES)


def stamp(folder: Path, stage: str, params: Any) -> None:
    """``provenance.json`` (content provenance + git commit) in the stage's own folder."""
    write_provenance(folder, stage, to_jsonable_python(params), packages=LLINK_PACKAGES)


def write_csv(path: Path, rows: list[dict]) -> None:
    """A history table (one row per step or evaluation), floats rounded as in the JSON metrics."""
    from stages.lib.llink.metrics import rounded

    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = [",".join(columns)] + [",".join(str(rounded(row.get(c, ""))) for c in columns) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def device_scope(device: str):
    """The stage's torch device: on ``cuda`` every tensor and module the stage creates lands on the GPU
    (``torch.device`` as the default device), with cuBLAS in its deterministic workspace mode, which
    ``torch.use_deterministic_algorithms`` requires there; ``cpu`` changes nothing."""
    import contextlib
    import os

    if device == "cpu":
        return contextlib.nullcontext()
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"llink.device is {device!r} but torch sees no CUDA GPU; set llink.device: cpu")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device(device)


def main_of(stage: str, work: Callable[[Llink], dict]) -> Callable[[list[str] | None], int]:
    """A ``main(argv)`` that loads ``llink`` from ``--params``, runs ``work`` and logs its timing."""
    import argparse

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=f"{stage}: see the module docstring")
        parser.add_argument("--params", default="params.yaml")
        parser.add_argument("--log-dir", default="logs", help="uncached timing log")
        args = parser.parse_args(argv)
        log = stage_logger(stage)
        started = time.time()
        try:
            llink = load_params(args.params).llink
            with device_scope(llink.device):
                summary = work(llink)
        except (ParamsError, OSError, ValueError, RuntimeError) as error:
            log.error("%s", error)
            return 2
        elapsed = round(time.time() - started, 2)
        write_json(Path(args.log_dir) / f"llink-{stage}.json", {"stage": stage, "wall_s": elapsed})
        log.info("%s (%s s)", summary, elapsed)
        return 0

    return main

