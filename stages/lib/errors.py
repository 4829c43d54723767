"""One error base for the pipeline and one exit status for a stage that fails.

Every error a stage or a building block raises on purpose (a bad params key, a missing input, a file that
breaks its schema) subclasses :class:`StageError`, and its message names the file, row or key. A stage
module ends with ``exit_stage(main)``: an error that escapes ``main`` becomes one line on stderr,
``<stage>: error: <message>``, and the exit status :data:`STAGE_FAILED`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, NoReturn

STAGE_FAILED = 2  # a stage that stopped on a StageError (argparse exits 2 on a bad argument too)


class StageError(Exception):
    """A stage cannot do its work as asked; the message says what and where (file, row or key)."""


def exit_stage(main: Callable[[], int | None], name: str | None = None) -> NoReturn:
    """Exit with ``main()``'s status; a :class:`StageError` escaping it is one line and :data:`STAGE_FAILED`."""
    name = name or Path(sys.argv[0]).stem
    try:
        code = main()
    except StageError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        code = STAGE_FAILED
    sys.exit(code)
