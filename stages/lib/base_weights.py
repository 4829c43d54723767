"""Where a model stage loads the base weights from: the tiny model's folder, or the Hub repo at its pinned revision.

One helper for train and evaluate (each had its own, and only train's refused an unpinned revision).
"""

from __future__ import annotations

from pathlib import Path

from stages.lib.params import UNPINNED, Base, ParamsError


def base_source(base: Base, base_dir: Path) -> tuple[str, dict]:
    """(the ``from_pretrained`` argument, its kwargs: ``revision`` for a Hub base); an unpinned revision is refused."""
    if base.kind == "tiny":
        return str(base_dir), {}
    if base.revision == UNPINNED:
        raise ParamsError(f"base.revision: still {UNPINNED!r}; set the commit of {base.repo} to load")
    return base.repo, {"revision": base.revision}
