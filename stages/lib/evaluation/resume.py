"""Resuming a killed evaluation.

Resumable: every finished cell is kept in ``logs/eval-resume/<session>/<fingerprint>/``, keyed
by everything that decides the outputs and by the code that scores them (this module's project
imports, package versions, CPU numerics: stages/lib/fingerprint.py), so a killed evaluation
restarts at the first block of cells (stages/lib/evaluation/blocks.py) with an unfinished cell and a changed model, adapter, benchmark, param or code never
reuses a stale cell. The folder is removed once the outputs are written.
"""

from __future__ import annotations

import json
from pathlib import Path

from stages.lib.evaluation.backends import eval_packages
from stages.lib.evaluation.grid import Session
from stages.lib.fingerprint import code_fingerprint, record_sha256

RESUME_ROOT = Path("logs/eval-resume")


def fingerprint(record: dict) -> str:
    """The resume folder's name: the first 16 hex digits of the record's sha256 (stages/lib/fingerprint.py)."""
    return record_sha256(record)[:16]


def resume_dir(session: Session, record: dict, root: Path = RESUME_ROOT) -> Path:
    """Keyed by the outputs' identity and by the code that scores (its closure, package versions, CPU numerics):
    a cell scored by other code is never reused. The code key is not in eval_config.json: a code edit that
    changes no score must not change an output's bytes."""
    return root / session.id / fingerprint({"outputs": record, "code": code_fingerprint("stages.evaluate", eval_packages(record["evaluate"]))})


def load_finished(directory: Path, key: str) -> dict | None:
    path = directory / f"{key}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None  # a cell cut off while being written is simply redone

