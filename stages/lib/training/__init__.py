"""The building blocks of the train stage (stages/train.py): backends, checkpoints, DDP."""

from __future__ import annotations

from stages.lib.errors import StageError


class TrainError(StageError, ValueError):
    """A run that cannot be trained as asked; the message says what is missing."""
