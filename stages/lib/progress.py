"""Progress bars and messages for the stages: ``logging`` under the stage's name, tqdm in a terminal only.

    log = stage_logger("fetch@code")          # "fetch@code: 812 files kept, ..." on stderr
    for file in progress(files, desc="fetch@code", unit="file"): ...

A stage run by hand in a terminal shows bars; under CI (``CI`` set, as GitHub Actions and most
runners set it) or with stderr sent to a file or a pipe (``dvc repro`` in a job's log,
``tools.repro``'s per-stage logs) there are none, so logs hold messages and not thousands of
carriage returns. Neither writes into any output: bars and messages go to stderr only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
FORMAT = "%(name)s: %(message)s"


def progress_enabled(stream=None) -> bool:
    """True when ``stream`` (stderr by default) is a terminal and ``CI`` is unset or empty."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("CI")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each message (pytest's capture swaps it per test)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns one; the current stderr wins
        pass


def stage_logger(name: str) -> logging.Logger:
    """The logger of one stage (its DVC name, e.g. ``translate@zh-5k``): INFO and up, to stderr.

    Its own handler, not the root's, so the libraries' loggers are left as they are and a
    message is written once however often this is called.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(handler, _CurrentStderr) for handler in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``iterable`` wrapped in a tqdm bar on stderr when :func:`progress_enabled`, else unchanged."""
    if not progress_enabled():
        return iter(iterable)
    from tqdm import tqdm

    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True))
