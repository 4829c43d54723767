"""Run the DVC command line with ``dvc.lock`` read for update by the C YAML parser.

    python -m tools.dvc_fast_lock repro --single-item train@<run>   # what tools.repro runs

After every stage DVC rewrites ``dvc.lock``: it reads the whole file with ruamel's round-trip
parser, which keeps comments and is pure Python, updates the stage's entry and dumps it again.
On the smoke pipeline's 6,600-line lock that read took 0.7 s of a 2 s stage bookkeeping, under
the repository lock, for each of 77 stages (pyinstrument; treeverse/dvc#2671 and #10942 describe
the same cost). DVC writes ``dvc.lock`` itself and puts no comments in it, so this module reads it
with ruamel's C-based safe parser instead; DVC's own round-trip dumper still writes it, and a plain
mapping dumps to the same bytes (tests/test_dvc_fast_lock.py checks both on this repository's lock
and through a real ``dvc repro``). Every other YAML file, ``dvc.yaml`` and ``params.yaml`` included,
is read as DVC reads it. If DVC no longer has the function this replaces, it runs unchanged (the
same bytes, 0.6 s slower a stage) and says so on stderr at every start, so the lost speed-up is seen.
"""

from __future__ import annotations

import sys
from pathlib import PurePath

LOCK_NAME = "dvc.lock"


PATCHED = "dvc.utils.serialize._yaml.parse_yaml_for_update"


def install() -> bool:
    """Route DVC's read-for-update of ``dvc.lock`` to the C parser; False where DVC's layout differs."""
    try:
        from dvc.utils.serialize import _yaml
    except ImportError:
        return False

    original = getattr(_yaml, "parse_yaml_for_update", None)
    if original is None or getattr(original, "fast_lock", False):
        return original is not None

    def parse_yaml_for_update(text, path):
        if PurePath(str(path)).name == LOCK_NAME:
            return _yaml.parse_yaml(text, path, typ="safe")
        return original(text, path)

    parse_yaml_for_update.fast_lock = True
    _yaml.parse_yaml_for_update = parse_yaml_for_update
    return True


def main(argv: list[str] | None = None) -> int:
    from dvc.cli import main as dvc_main

    if not install():
        from dvc import __version__

        print(f"WARNING: tools.dvc_fast_lock is inactive: DVC {__version__} has no {PATCHED}; dvc.lock is read "
              "by DVC's pure-Python parser (same bytes, about 0.6 s slower a stage)", file=sys.stderr, flush=True)
    return dvc_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
