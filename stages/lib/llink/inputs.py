"""What Stage B, the direct baseline and evaluation read from the earlier llink stages: the
frozen decoder with its reserved rows restored, the pairs, the cached features and the frozen
Stage A projector's vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from stages.lib.llink import backbones as bb
from stages.lib.llink.data import Pair, read_pairs
from stages.lib.llink.projector import Projector
from stages.lib.params import Llink


@dataclass(frozen=True)
class Paths:
    pairs: Path = Path("data/llink/pairs")
    models: Path = Path("models/llink/backbones")
    features: Path = Path("data/llink/features")
    stage_a: Path = Path("models/llink/stage_a")
    stage_b: Path = Path("models/llink/stage_b")
    direct: Path = Path("models/llink/direct")
    metrics: Path = Path("metrics/llink")
    eval: Path = Path("data/llink/eval")
    report: Path = Path("reports/llink.md")


def special_rows(paths: Paths) -> dict[str, torch.Tensor]:
    return load_file(paths.features / "special_rows.safetensors", device=str(torch.get_default_device()))


def frozen_decoder(llink: Llink, paths: Paths, rows: dict[str, torch.Tensor] | None = None):
    spec = llink.backbones.decoder
    rows = special_rows(paths) if rows is None else rows
    return bb.load_frozen_decoder(llink.backbones.kind, spec.repo, spec.revision, paths.models / "decoder", rows)


def pairs(paths: Paths) -> tuple[list[Pair], list[Pair]]:
    return read_pairs(paths.pairs / "train.jsonl"), read_pairs(paths.pairs / "dev.jsonl")


def features(paths: Paths) -> dict[str, torch.Tensor]:
    return load_file(paths.features / "features.safetensors", device=str(torch.get_default_device()))


def load_projector(llink: Llink, paths: Paths, d_enc: int, d_dec: int) -> Projector:
    cfg = llink.stage_a
    projector = Projector(d_enc, d_dec, cfg.hidden_mult, cfg.dropout)
    projector.load_state_dict(load_file(paths.stage_a / "projector.safetensors"))
    for param in projector.parameters():
        param.requires_grad_(False)
    return projector.eval()


@torch.no_grad()
def projected(llink: Llink, paths: Paths, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The frozen projector's vectors of the train and dev pairs, computed once, without dropout
    (the original's functional copy)."""
    projector = load_projector(llink, paths, feats["enc_train"].shape[1], feats["teacher_train"].shape[1])
    return {"train": projector(feats["enc_train"]), "dev": projector(feats["enc_dev"])}
