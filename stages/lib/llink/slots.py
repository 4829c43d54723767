"""Stage B's slot modules: the Stage A vector becomes K input-embedding slots
(ForeignScale -> gated residual adapter -> expander -> LayerNorm) that replace the
placeholder rows ``<f0>..<fK-1>`` at layer 0; plus the ablations evaluation compares against."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SLOT_MODES = ("injected", "ablated", "zeros", "shuffled")


class ForeignScale(nn.Module):
    """LayerNorm_noaffine(v / |v|) * scale (a scalar, init 1.0)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        v = F.normalize(v, dim=-1)
        return F.layer_norm(v, v.shape[-1:]) * self.scale


class GatedAdapter(nn.Module):
    """s + clamp(tanh(g), 0, clamp) * W2(GELU(W1(LN(s)))). One class and one clamp for training and
    inference; the original clamped at 0.7 in training and 0.4 at inference."""

    def __init__(self, dim: int, gate_init: float, gate_clamp: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up, self.down = nn.Linear(dim, dim), nn.Linear(dim, dim)
        for layer in (self.up, self.down):
            nn.init.xavier_uniform_(layer.weight, gain=0.5)
            nn.init.zeros_(layer.bias)
        self.gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.gate_clamp = gate_clamp

    def gate_value(self, clamp: float | None = None) -> torch.Tensor:
        return torch.tanh(self.gate).clamp(0.0, self.gate_clamp if clamp is None else clamp)

    def forward(self, s: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
        return s + self.gate_value(clamp) * self.down(F.gelu(self.up(self.norm(s))))


class TokenExpander(nn.Module):
    """LayerNorm_d(reshape_K(Linear(2d -> K*d)(GELU(Linear(d -> 2d)(a)))))."""

    def __init__(self, dim: int, k: int):
        super().__init__()
        self.k, self.dim = k, dim
        self.up, self.down = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, k * dim)
        for layer in (self.up, self.down):
            nn.init.xavier_uniform_(layer.weight, gain=0.1)
            nn.init.zeros_(layer.bias)
        self.norm = nn.LayerNorm(dim)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.norm(self.down(F.gelu(self.up(a))).view(-1, self.k, self.dim))


class SlotBridge(nn.Module):
    """Projected vector -> K slots; the BOW head is auxiliary (training only)."""

    def __init__(self, dim: int, k: int, vocab: int, gate_init: float, gate_clamp: float):
        super().__init__()
        self.scale = ForeignScale()
        self.adapter = GatedAdapter(dim, gate_init, gate_clamp)
        self.expander = TokenExpander(dim, k)
        self.bow = nn.Linear(dim, vocab, bias=False)

    def forward(self, v: torch.Tensor, gate_boost: float = 1.0, clamp: float | None = None) -> torch.Tensor:
        s = self.scale(v)
        a = self.adapter(s, clamp)
        if gate_boost != 1.0:
            # the original's inference knob: amplify the adapter's residual, keep the scaled norm
            a = s + gate_boost * (a - s)
            a = a * s.norm(dim=-1, keepdim=True) / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return self.expander(a)


def inject(embeds: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Replace the K placeholder positions of each row with its slots; every other row is untouched."""
    out = embeds.clone()
    rows = torch.arange(embeds.shape[0]).unsqueeze(1).expand_as(positions)
    out[rows, positions] = slots.to(embeds.dtype)
    return out


def slot_inputs(embeds: torch.Tensor, slots: torch.Tensor, positions: torch.Tensor, mode: str) -> torch.Tensor:
    """``injected``: the slots; ``ablated``: the placeholder rows (the original's "zeroed");
    ``zeros``: true zero vectors; ``shuffled``: the next row's slots (rows rolled by one)."""
    if mode == "injected":
        return inject(embeds, slots, positions)
    if mode == "ablated":
        return embeds
    if mode == "zeros":
        return inject(embeds, torch.zeros_like(slots), positions)
    if mode == "shuffled":
        return inject(embeds, slots.roll(1, dims=0), positions)
    raise ValueError(f"slot mode {mode!r} is not one of {SLOT_MODES}")


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding, so a padded row sees the positions of its unpadded self."""
    return (attention_mask.cumsum(-1) - 1).clamp_min(0)
