"""What every output says about how it was made.

Two parts, kept apart on purpose:

- :func:`content_provenance` holds what determines the bytes of a data file: the
  stage, its resolved params, seeds, source revisions and package versions. It is
  embedded in data files (parquet metadata, stats JSON) and never holds a time,
  a host name or a machine path, so two clean clones write identical bytes.
- :func:`code_provenance` holds the git commit and a dirty flag. It goes into a
  separate ``provenance.json`` beside each output, which no downstream stage
  depends on: committing a README change must not invalidate an adapter.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from stages.lib.numerics import cpu_numerics

# the distributions whose versions decide what the corpus stages produce
CORPUS_PACKAGES = ("dvc", "datasets", "pyarrow", "pydantic", "datasketch", "huggingface-hub")

# paths whose uncommitted edits make an output "dirty": code and params, not DVC's own files
SOURCE_PATHS = ("stages", "params.yaml", "dvc.yaml", "pyproject.toml")


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in blocks (model weights can be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: Iterable[str] = CORPUS_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in sorted(names):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def content_provenance(stage: str, params: Any, extra: dict | None = None, packages: Iterable[str] = CORPUS_PACKAGES) -> dict:
    """Everything that decides an output's bytes, as a JSON-ready dict."""
    if hasattr(params, "model_dump"):
        params = params.model_dump(mode="json")
    record = {
        "stage": stage,
        "params": params,
        # major.minor only: the tokenizer and ast change between minors, not patches
        "python": "%d.%d" % sys.version_info[:2],
        "packages": package_versions(packages),
    }
    if extra:
        record.update(extra)
    return record


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_provenance(root: Path | str = ".") -> dict:
    """The commit the stage ran from, whether its code or params had uncommitted edits, and the CPU
    numerics in force (stages.lib.numerics: an override would show here, not in the data files)."""
    root = Path(root)
    sha = _git("rev-parse", "HEAD", cwd=root)
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS, cwd=root)
    return {"git_sha": sha, "dirty": bool(status) if status is not None else None, "cpu_numerics": cpu_numerics()}


def write_json(path: Path | str, data: Any) -> None:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8, final newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_provenance(
    out_dir: Path | str, stage: str, params: Any, extra: dict | None = None, packages: Iterable[str] = CORPUS_PACKAGES
) -> None:
    """``provenance.json`` beside a stage's outputs: content provenance plus the git commit."""
    record = content_provenance(stage, params, extra, packages)
    record.update(code_provenance())
    write_json(Path(out_dir) / "provenance.json", record)
