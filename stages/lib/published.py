"""The study's published outputs on the Hub, read at a pinned commit: shared by the import stages.

``stages/import_published.py`` (the experiments' raw files) and ``stages/import_adapters.py`` (the
LoRA adapters) fetch with :func:`snapshot`, which is ``huggingface_hub.snapshot_download`` with
``allow_patterns`` at one commit, the token taken from ``HF_TOKEN`` in the environment only (never
a stored login, never written anywhere). The files are then copied out of the Hugging Face cache
into the stage's output, so DVC tracks real files, not links into a cache. With
``HF_HUB_OFFLINE=1`` the same call answers from the cache alone (how the tests drive it, on a
cache folder they build in the Hub's layout with :func:`write_cache`).

A stage that is disabled (``published.enabled: false``, the smoke default) writes only
``status.json`` saying why (:func:`write_skipped`); an enabled one with a moving revision
(``PIN-ME``, a branch) is refused by :func:`check_revision`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from stages.lib.errors import StageError
from stages.lib.params import UNPINNED
from stages.lib.provenance import file_sha256, write_json

MOVING = {"", "main", "master", "HEAD", UNPINNED}
STATUS = "status.json"

# The raw outputs of the published experiments (``legesher/language-decoded-experiments``):
# Phase 3 ``_results_`` and strict ``_summary_`` files (not the original's ``_summary_reparsed_``:
# reparse_published writes its own) and Phase 2's two result files per condition.
EXPERIMENT_PATTERNS = {
    "phase3": ["phase3/conditions/*_results_*.json", "phase3/conditions/*_summary_template*.json",
               "phase3/conditions/*_summary_all.json"],
    "phase2": ["conditions/*/results/*_prompt_results.json"],
}


class PublishedError(StageError, ValueError):
    """An import that cannot be done as asked; the message says why."""


def check_revision(revision: str, where: str = "--revision") -> str:
    """The revision itself, if it is a commit: ``PIN-ME`` and branch names are refused."""
    if revision in MOVING:
        raise PublishedError(f"{where} {revision!r} is not pinned: set the commit sha of the Hub repo "
                             "(a branch moves, so the import could not be repeated)")
    return revision


def hub_token() -> str | bool:
    """``HF_TOKEN`` from the environment, else False: no stored login is used."""
    return os.environ.get("HF_TOKEN") or False


def snapshot(repo: str, repo_type: str, revision: str, patterns: Sequence[str], cache_dir: Path | None = None) -> Path:
    """The network boundary: the Hub snapshot of the files matching ``patterns`` at ``revision``."""
    from huggingface_hub import snapshot_download

    check_revision(revision)
    try:
        return Path(snapshot_download(repo_id=repo, repo_type=repo_type, revision=revision, allow_patterns=list(patterns),
                                      cache_dir=cache_dir, token=hub_token()))
    except Exception as error:  # offline, no such revision, auth: the hub's errors share no base class with OSError
        raise PublishedError(f"cannot download {repo}@{revision}: {type(error).__name__}: {error}") from None


def matching(folder: Path, patterns: Sequence[str]) -> list[str]:
    """The files under ``folder`` that ``patterns`` select, as the Hub selects them, sorted."""
    from huggingface_hub.utils import filter_repo_objects

    files = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(filter_repo_objects(files, allow_patterns=list(patterns)))


def copy_files(source: Path, names: Iterable[str], out: Path) -> dict[str, str]:
    """Copy each file (links into the cache resolved) to ``out``; returns path -> sha256."""
    hashes = {}
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
        hashes[name] = file_sha256(target)
    return hashes


def reset(out: Path) -> None:
    """An empty output folder: nothing of an earlier import may survive in it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def write_skipped(out: Path, stage: str, reason: str, command: str) -> None:
    """The whole output of a disabled stage: ``status.json`` saying why and how to run it."""
    reset(out)
    write_json(out / STATUS, {"stage": stage, "status": "skipped", "reason": reason, "to_run": command})


def status(folder: Path) -> dict:
    """An import stage's ``status.json`` (empty when there is none: a folder not written by a stage)."""
    path = folder / STATUS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def skipped_reason(folder: Path) -> str | None:
    """The reason an upstream import stage skipped, or None when it imported."""
    record = status(folder)
    return record.get("reason", "no reason given") if record.get("status") == "skipped" else None


def write_cache(cache_dir: Path, repo: str, repo_type: str, commit: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache holding ``repo`` at ``commit``, as ``snapshot_download`` leaves one.

    For tests and offline copies: the files under ``<cache>/<type>s--<owner>--<name>/snapshots/<commit>/``,
    ``refs/main`` and the tree listing the hub keeps beside them (written by huggingface_hub's own
    writer), so that ``snapshot_download(revision=commit)`` runs its whole path (listing, pattern filter,
    one cached download per file) without the network. Returns the snapshot folder.
    """
    import hashlib

    from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache

    folder = cache_dir / f"{repo_type}s--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / commit
    entries = {}
    for name, data in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_bytes(data)
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id, as the Hub lists it
        entries[name] = TreeCacheEntry(size=len(data), blob_id=blob_id)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit, encoding="utf-8")
    write_tree_cache(str(folder), commit, entries)
    return snap
