"""Output paths built from params, checked to stay inside the folder they are declared under.

The schema (stages/lib/params.py) already refuses a name with '/', '..' or a leading '/'; this is the
second line, where a stage turns names into a path it writes: ``safe_join(Path("data"), "packaged",
dataset)`` resolves the result (links included) and refuses it unless it lies strictly inside ``data``.
Join folders, then add the file name: DVC may check a file out as a link into its cache, outside ``data``.

Every layout and file-name rule of the study lives here too, once, so that no stage re-derives one:

- :func:`adapter_folder`: where train writes a run's adapter (manifest and import_adapters read it);
- :func:`eval_folder`: a session's results folder in the published layout,
  ``<phase>/conditions/<condition>/seed<N|none>`` (Phase 3) or ``<condition>/results`` (Phase 2);
- :func:`result_file_name`: ``<condition>_seed<N|none>[_smoke<N>]_<kind>_<template>.json``, and
  :func:`parse_result_file_name`, its one inverse, for reading published snapshots;
- :func:`condition_parts`: number, language and size tier of a published condition folder name
  (``condition-3-zh-5k-native-code``), for published results that come without params.

A run's condition folder and seed are data (params: ``grid[].condition_folder``, ``evaluate.sessions``);
nothing here splits a run id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


# --------------------------------------------------------------------------- the published results layout

BASELINE = "baseline"
KINDS = ("results", "summary", "partial", "summary_reparsed", "summary_loglik")
PHASE2_FOLDER = "results"  # Phase 2 keeps one folder per condition: conditions/<condition>/results/

# longest kinds first: "summary" must not swallow "summary_reparsed"
_RESULT_FILE = re.compile(
    r"^(?P<condition>.+?)_seed(?P<seed>\d+|none)(?:_smoke(?P<smoke>\d+))?"
    r"_(?P<kind>results|summary_reparsed|summary_loglik|summary|partial)_(?P<template>template\d+|all)\.json$"
)
_CONDITION = re.compile(r"^condition-(?P<number>\d+)-(?P<lang>[a-z]{2,3})-(?P<tier>\d+k)(?:-.+)?$")


def seed_token(seed: int | None) -> str:
    """The seed as the published names spell it: ``42``, or ``none`` for the baseline."""
    return "none" if seed is None else str(seed)


def eval_folder(phase: str, condition: str, seed: int | None) -> str:
    """A session's results folder under metrics/eval (or a snapshot): the published layout of ``phase``."""
    leaf = PHASE2_FOLDER if phase == "phase2" else f"seed{seed_token(seed)}"
    return f"{phase}/conditions/{condition}/{leaf}"


def result_file_name(condition: str, seed: int | None, kind: str, template: str, smoke: int | None = None) -> str:
    """``condition-2-zh-5k_seed42_results_template1.json`` (``_smoke<N>`` before the kind when N rows were run)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    return f"{condition}_seed{seed_token(seed)}" + (f"_smoke{smoke}" if smoke else "") + f"_{kind}_{template}.json"


@dataclass(frozen=True)
class ResultFile:
    """A published result file name, read back: :func:`result_file_name`'s arguments (seed as its token)."""

    condition: str
    seed: str  # "42" or "none"
    kind: str
    template: str  # "template1", ..., or "all"
    smoke: int | None = None

    def sibling(self, kind: str) -> str:
        """The name of the same session's file of another ``kind``."""
        seed = None if self.seed == "none" else int(self.seed)
        return result_file_name(self.condition, seed, kind, self.template, self.smoke)


def parse_result_file_name(name: str) -> ResultFile | None:
    """The parts of a published result file name, or None when ``name`` is not one."""
    match = _RESULT_FILE.match(name)
    if not match:
        return None
    smoke = int(match["smoke"]) if match["smoke"] else None
    return ResultFile(match["condition"], match["seed"], match["kind"], match["template"], smoke)


class LayoutError(StageError, ValueError):
    """A name that does not follow the published layout; the message names it."""


def condition_parts(condition: str) -> dict:
    """Number, language and size tier of a published condition folder name (``baseline``: number 0)."""
    if condition == BASELINE:
        return {"number": 0, "lang": None, "tier": None}
    match = _CONDITION.match(condition)
    if not match:
        raise LayoutError(f"condition name {condition!r} is not condition-<N>-<lang>-<tier>[-...]")
    return {"number": int(match["number"]), "lang": match["lang"], "tier": match["tier"]}
