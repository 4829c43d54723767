"""Output paths built from params, checked to stay inside the folder they are declared under.

The schema (stages/lib/params.py) already refuses a name with '/', '..' or a leading '/'; this is the
second line, where a stage turns names into a path it writes: ``safe_join(Path("data"), "packaged",
dataset)`` resolves the result (links included) and refuses it unless it lies strictly inside ``data``.
Join folders, then add the file name: DVC may check a file out as a link into its cache, outside ``data``.

The layout rules that several stages share live here too, so that no stage imports another for them:
:func:`adapter_folder` (where train writes a run's adapter, and manifest and import_adapters read it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stages.lib.errors import StageError

if TYPE_CHECKING:
    from stages.lib.params import Train


class PathEscapeError(StageError, ValueError):
    """A path made from params that would leave its declared output folder; the message names both."""


def safe_join(root: Path | str, *parts: str) -> Path:
    """``root/parts...``, unresolved (as the caller named it), once it is known to resolve inside ``root``."""
    root = Path(root)
    path = root.joinpath(*parts)
    inside = root.resolve()
    where = path.resolve()
    if where == inside or not where.is_relative_to(inside):
        raise PathEscapeError(f"{path}: made from {list(parts)!r}, it is not inside {root}")
    return path


def adapter_folder(models_dir: Path, train: Train, run_id: str) -> Path:
    """``<models_dir>/<train.adapters_dir minus models/>/<run_id>``: models/tiny-aya-base/<run> or flat models/<run>."""
    return safe_join(models_dir, *train.adapters_dir.split("/")[1:], run_id)
