"""Stage A: the projector from the encoder's sentence vector onto the decoder's teacher state,
its schedules, and the teacher queue of hard negatives."""

from __future__ import annotations

import math

import torch
from torch import nn


class Projector(nn.Module):
    """LayerNorm(Linear(Dropout(GELU(Linear(z))))): d_enc -> mult*d_enc -> d_dec (the original 768->3072->2048)."""

    def __init__(self, d_enc: int, d_dec: int, mult: int = 4, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_enc, mult * d_enc), nn.GELU(), nn.Dropout(dropout), nn.Linear(mult * d_enc, d_dec), nn.LayerNorm(d_dec)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def cosine_lr(step: int, base: float, minimum: float, warmup: int, total: int) -> float:
    """Linear warmup 0 -> base, then cosine base -> minimum at ``total`` (the original's ``cosine_lr``)."""
    if warmup > 0 and step < warmup:
        return base * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * progress))


def temperature(step: int, start: float, end: float, total: int) -> float:
    """Linear anneal start -> end over ``total`` steps."""
    return start + (end - start) * min(step, total) / max(1, total)


class TeacherQueue:
    """A ring buffer of L2-normalised teacher states. Pushed *after* the loss, so a batch's own
    positives are never among its negatives."""

    def __init__(self, size: int, dim: int):
        self.buffer = torch.zeros(size, dim)
        self.pointer = 0
        self.filled = 0

    def push(self, states: torch.Tensor) -> None:
        size = self.buffer.shape[0]
        states = nn.functional.normalize(states.detach(), dim=-1)[-size:]
        self.buffer[(self.pointer + torch.arange(len(states))) % size] = states
        self.pointer = (self.pointer + len(states)) % size
        self.filled = min(self.filled + len(states), size)

    def contents(self) -> torch.Tensor:
        return self.buffer[: self.filled]

    def hard_negatives(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """One shared set per batch: the top-k queue entries by *mean* similarity to the batch (as the original)."""
        bank = self.contents()
        if bank.shape[0] == 0 or k == 0:
            return bank[:0]
        scores = (queries @ bank.T).mean(0)
        return bank[scores.topk(min(k, bank.shape[0])).indices]
