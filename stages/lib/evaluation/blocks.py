"""Generation across cells: a session's small cells are packed into blocks whose prompts are
generated together.

A smoke cell has about 11 prompts, so one ``generate`` per cell ran batches a third full and
paid each forward's fixed cost (the LoRA layers, the logits processors) three times over. A block
is a run of consecutive cells of the grid (its loop order) that share an output group and a
``max_new_tokens``, packed while their prompts fit ``BLOCK_BATCHES`` batches of
``evaluate.batch_size``; a cell larger than that is a block of its own, so a paper cell (hundreds
to thousands of prompts) is generated exactly as before. The blocks are a pure function of the
grid, the cells' sizes and the params, never of what is left to do: a resumed run, or a run over
worker processes, generates every prompt in the batch an uninterrupted one-process run does, and
writes the same bytes.

The price, paid once: a product's last bits depend on the batch it is computed in (MKL's
COMPATIBLE branch, stages/lib/numerics.py), so a smoke prompt batched beside another cell's
prompts can end a float32 rounding apart from where it ended when batched within its own cell
only; a greedy step can then pick another token and a raw output, and its score, change. The
resume unit is the block: its cells are written one by one after its generation, and a block
with any cell missing is generated again whole (its batches must be the uninterrupted run's),
writing only the cells that are missing.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from stages.lib.evaluation import EvaluateError
from stages.lib.evaluation.grid import Job

BLOCK_BATCHES = 8  # a block's prompts fit this many batches; more only adds to what a resume redoes


def blocks(grid: Sequence[Job], sizes: Mapping[str, int], tokens: Mapping[str, int], batch_size: int) -> list[list[Job]]:
    """The grid's cells, in order, cut into blocks: consecutive cells of one group and one
    ``max_new_tokens`` (``tokens[job.key]``) whose prompts (``sizes[job.key]``) together fit
    ``BLOCK_BATCHES * batch_size``."""
    room = BLOCK_BATCHES * batch_size
    packed: list[list[Job]] = []
    filled = 0
    for job in grid:
        last = packed[-1] if packed else None
        if (last is None or last[0].group != job.group or tokens[last[0].key] != tokens[job.key]
                or filled + sizes[job.key] > room):
            packed.append([job])
            filled = sizes[job.key]
        else:
            last.append(job)
            filled += sizes[job.key]
    return packed


def generate_cells(backend, prompts: Sequence[Sequence[str]], max_new_tokens: int) -> list[list[str]]:
    """One ``generate`` over every cell's prompts, in order; each cell's outputs back in its own prompts' order."""
    flat = [prompt for cell in prompts for prompt in cell]
    outputs = backend.generate(flat, max_new_tokens)
    if len(outputs) != len(flat):
        raise EvaluateError(f"the backend returned {len(outputs)} outputs for {len(flat)} prompts")
    split, start = [], 0
    for cell in prompts:
        split.append(list(outputs[start : start + len(cell)]))
        start += len(cell)
    return split
