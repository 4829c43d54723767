"""The training loss curve, written step by step while the Trainer runs.

A run's ``metrics/train/<run>/loss.tsv`` (step, epoch, loss, grad_norm, learning_rate) is the
source of ``dvc plots`` (the overlays in dvc.yaml's top-level ``plots:``). Written only at the
end, a long GPU run had no live curve for ``dvc plots show`` or DVC's VS Code extension.
DVCLive is the convention for that (``report_to="dvclive"``), but it stamps every row with a
wall-clock ``timestamp`` and records a temporary folder's path, and this repository's outputs
must rebuild byte for byte; so :func:`loss_curve_callback` writes the file itself, in the same
shape: the header when training begins, then one row appended and flushed at every logging
step. Content only, never a time or a path.

A resumed run (stages/train.py) starts from a checkpoint's ``log_history``: ``on_train_begin``
rewrites the file from it, dropping any row logged after that checkpoint by the killed run, so
a finished file always holds exactly the rows of the Trainer's final ``log_history`` with a
``loss`` (:func:`loss_curve_text` of it), however often the run was interrupted. Under DDP only
the world's process zero writes.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = ("step", "epoch", "loss", "grad_norm", "learning_rate")


def loss_row(entry: dict) -> str | None:
    """One TSV line (no newline) for a log entry with a ``loss``; None for any other entry."""
    if "loss" not in entry:
        return None
    return "\t".join(repr(entry[key]) if key in entry else "" for key in COLUMNS)


def loss_curve_text(log_history: list[dict]) -> str:
    """The whole file for a log history: the header and one line per logged loss."""
    rows = [row for row in map(loss_row, log_history) if row is not None]
    return "\n".join(["\t".join(COLUMNS), *rows]) + "\n"


def write_loss_curve(path: Path, log_history: list[dict]) -> None:
    """(Re)write ``path`` from a log history: a resumed run's rows so far, or the header alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(loss_curve_text(log_history), encoding="utf-8")


def append_loss_row(path: Path, entry: dict) -> None:
    """Append one logged step and flush it, so a reader sees the curve while training runs."""
    row = loss_row(entry)
    if row is None:
        return
    with path.open("a", encoding="utf-8") as stream:
        stream.write(row + "\n")
        stream.flush()


def loss_curve_callback(path: Path):
    """A ``TrainerCallback`` that keeps ``path`` equal to the loss rows of the log history so far."""
    from transformers import TrainerCallback

    class LossCurve(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                write_loss_curve(path, state.log_history)

        def on_log(self, args, state, control, logs=None, **kwargs):
            # the Trainer appends {**logs, "step": global_step} to log_history just before on_log
            if state.is_world_process_zero and state.log_history:
                append_loss_row(path, state.log_history[-1])

    return LossCurve()
