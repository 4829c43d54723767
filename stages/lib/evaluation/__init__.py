"""The building blocks of the evaluate stage (stages/evaluate.py): the session's grid, backends, workers, resume."""

from __future__ import annotations

from stages.lib.errors import StageError


class EvaluateError(StageError, ValueError):
    """Bad input for evaluation; the message names the session, benchmark, language or file."""
