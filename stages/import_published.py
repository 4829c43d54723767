"""import_published: the study's published experiments (raw outputs), at a pinned revision.

    python -m stages.import_published                        # dvc.yaml: import_published
    python -m stages.import_published --cache-dir DIR        # a Hugging Face cache to read (offline copies, tests)

Reads ``published`` from params.yaml. Disabled (``published.enabled: false``, the smoke default), it
writes only ``data/published/experiments/status.json`` saying so, and touches no network. Enabled, the
revision ``published.experiments.revision`` must be a commit (``PIN-ME`` and branch names are refused,
as ``fetch`` refuses them); then it fetches from ``published.experiments.repo`` (the dataset
``legesher/language-decoded-experiments``) with ``huggingface_hub.snapshot_download`` at that
revision, ``allow_patterns`` selecting the raw outputs only (stages/lib/published.py):

- Phase 3: ``phase3/conditions/<condition>/seed<N|none>/*_results_*.json`` and the strict
  ``*_summary_<template>.json`` (not the original's ``_summary_reparsed_``,
  which ``reparse_published`` writes anew from the raw outputs);
- Phase 2: ``conditions/<condition>/results/{english,native}_prompt_results.json``.

The files are copied out of the Hugging Face cache into ``data/published/experiments/`` in the repo's
layout, with ``status.json`` (``imported``: repo, revision, file count) and ``manifest.json`` (the
sha256 of every file). The token comes from ``HF_TOKEN`` in the environment only and is never written.
No time in the outputs: the same revision gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from stages.lib import published
from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.provenance import write_json

STAGE = "import_published"
REPO_TYPE = "dataset"
TO_RUN = "set published.enabled: true and published.experiments.revision in params.yaml, then " \
         "`dvc repro report_published`"


def import_experiments(repo: str, revision: str, out: Path, cache_dir: Path | None = None,
                       phases: Sequence[str] = ("phase3", "phase2")) -> dict[str, str]:
    """Fetch the raw outputs of ``repo`` at ``revision`` into ``out``; returns path -> sha256."""
    published.check_revision(revision, "published.experiments.revision")
    patterns = [pattern for phase in phases for pattern in published.EXPERIMENT_PATTERNS[phase]]
    source = published.snapshot(repo, REPO_TYPE, revision, patterns, cache_dir)
    names = published.matching(source, patterns)
    if not any(name.startswith("phase3/conditions/") for name in names):
        raise published.PublishedError(f"{repo}@{revision}: no phase3/conditions/... _results_ or _summary_ files "
                                       "(is it the experiments repo, at a commit that has them?)")
    published.reset(out)
    hashes = published.copy_files(source, names, out)
    write_json(out / "manifest.json", {"repo": repo, "revision": revision, "files_sha256": hashes})
    write_json(out / published.STATUS, {"stage": STAGE, "status": "imported", "repo": repo, "revision": revision,
                                        "files": len(hashes)})
    return hashes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.import_published", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=Path("data/published/experiments"))
    parser.add_argument("--cache-dir", type=Path, help="the Hugging Face cache to use (default: the hub's own)")
    args = parser.parse_args(argv)
    try:
        settings = load_params(args.params).published
    except ParamsError as error:
        print(error, file=sys.stderr)
        return 2
    if not settings.enabled:
        reason = f"{args.params}: published.enabled is false (the smoke default: no network)"
        published.write_skipped(args.out, STAGE, reason, TO_RUN)
        print(f"{STAGE}: skipped, {reason}; {args.out / published.STATUS} says so")
        return 0
    repo, revision = settings.experiments.repo, settings.experiments.revision
    try:
        hashes = import_experiments(repo, revision, args.out, args.cache_dir)
    except published.PublishedError as error:
        print(f"{STAGE}: {args.params}: {error}", file=sys.stderr)
        return 2
    print(f"{STAGE}: {len(hashes)} files of {repo}@{revision} -> {args.out}/")
    return 0


if __name__ == "__main__":
    exit_stage(main)
