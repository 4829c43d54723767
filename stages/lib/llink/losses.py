"""The losses of Stage A and Stage B, with the original's usage-hinge sign kept as an ablation."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def stage_a_loss(proj: torch.Tensor, teacher: torch.Tensor, negatives: torch.Tensor, tau: float,
                 align_cos_w: float, lognorm_w: float) -> tuple[torch.Tensor, dict]:
    """Symmetric InfoNCE (queue negatives on the foreign->English side only) + direction + log-norm.

    ``mse_loss`` on unit vectors divides by d, so the direction term is nearly inert;
    it is kept for faithfulness."""
    p, h = F.normalize(proj, dim=-1), F.normalize(teacher, dim=-1)
    target = torch.arange(p.shape[0])
    f2e = F.cross_entropy(p @ torch.cat([h, negatives]).T / tau, target)
    e2f = F.cross_entropy(h @ p.T / tau, target)
    nce = 0.5 * (f2e + e2f)
    direction = F.mse_loss(p, h)
    lognorm = ((proj.norm(dim=-1).log() - teacher.norm(dim=-1).log()) ** 2).mean()
    loss = nce + align_cos_w * direction + lognorm_w * lognorm
    return loss, {"nce": nce.item(), "direction": direction.item(), "lognorm": lognorm.item()}


def info_nce(queries: torch.Tensor, keys: torch.Tensor, tau: float) -> torch.Tensor:
    """One-direction in-batch InfoNCE, logits clamped to +-32, 0 when non-finite (the original's ``safe_info_nce``)."""
    logits = (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T / max(tau, 0.01)).clamp(-32, 32)
    loss = F.cross_entropy(logits, torch.arange(queries.shape[0]))
    return loss if torch.isfinite(loss) else loss.new_zeros(())


def usage_hinge(nll_injected: torch.Tensor, nll_ablated: torch.Tensor, sign: str, margin: float) -> torch.Tensor:
    """``paper``: relu(L_inj - L_abl + margin), a penalty when the slots do not help by ``margin``.
    ``repo``: relu(L_abl - L_inj), the original code's inverted sign, which rewards doing without the slots."""
    if sign == "paper":
        return F.relu(nll_injected - nll_ablated + margin)
    if sign == "repo":
        return F.relu(nll_ablated - nll_injected)
    raise ValueError(f"usage sign {sign!r} is neither 'paper' nor 'repo'")


def bow_loss(logits: torch.Tensor, target_ids: list[list[int]], ignore: set[int]) -> torch.Tensor:
    """Multi-label BCE of a bag of the target's tokens (stop words and specials left out)."""
    bags = torch.zeros_like(logits)
    for row, ids in enumerate(target_ids):
        keep = [i for i in ids if i not in ignore]
        if keep:
            bags[row, keep] = 1.0
    return F.binary_cross_entropy_with_logits(logits, bags)


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed NLL of the labelled tokens and their count (next-token shift applied)."""
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    losses = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                             ignore_index=-100, reduction="none").view(shift_labels.shape)
    mask = shift_labels != -100
    return (losses * mask).sum(1), mask.sum(1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    total, count = token_nll(logits, labels)
    return total.sum() / count.sum().clamp_min(1)
