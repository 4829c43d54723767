"""What a resumed run must share with the run it resumes, besides params and input files: the code.

A finished evaluation cell (stages/evaluate.py) or a training checkpoint (stages/train.py) is reused
only by a process that would write the same bytes. Params, weights and data are in each stage's own
key; this adds what decides the bytes from the code side:

- the stage module's import closure within this project: every ``stages`` module it imports,
  anywhere in a file (lazy imports inside functions too), transitively, with the package
  ``__init__`` files run on the way (``stages/__init__.py`` pins the CPU numerics), by their bytes;
- the Python version and the versions of the third-party distributions those files import, plus
  the ones a stage names (transformers' own dependencies such as tokenizers);
- the CPU numerics in force (stages/lib/numerics.py).

It decides resumption only and is written into no output, so editing code never changes an output's
bytes through it. It covers at least what DVC reruns a stage for: tests/test_fingerprint.py checks that
every ``stages/`` dependency dvc.yaml declares for a stage lies in its module's closure. (The closure is
wider: the params schema and provenance helpers are not dvc.yaml deps, and a resume may redo work for them.)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Iterable

from stages.lib.numerics import cpu_numerics
from stages.lib.provenance import file_sha256, package_versions

PACKAGE = "stages"
# always recorded: what runs under every model stage, imported directly or not
RUNTIME_PACKAGES = ("accelerate", "numpy", "peft", "safetensors", "tokenizers", "torch", "transformers")


def _module_file(root: Path, name: str) -> Path | None:
    """The file of project module ``name`` under ``root``, or None for anything outside the project."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_names(path: Path, name: str) -> set[str]:
    """Every module name an import statement of ``path`` (module ``name``) may load, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def import_closure(module: str, root: Path) -> tuple[list[Path], set[str]]:
    """(project files ``module`` runs, sorted; top-level names of the other modules they import)."""
    files: set[Path] = set()
    external: set[str] = set()
    todo = [module]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a.b.c runs a and a.b first
        path = _module_file(root, name)
        if path is None:
            if parts[0] != PACKAGE:
                external.add(parts[0])
            continue
        files.add(path)
        todo.extend(imported_names(path, name))
    return sorted(files), external - set(sys.stdlib_module_names)


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def code_identity(module: str, packages: Iterable[str] = (), root: Path | None = None) -> dict:
    """The code side of a resume key, as a JSON-ready dict (see the module docstring)."""
    root = Path(__file__).resolve().parents[2] if root is None else root
    files, external = import_closure(module, root)
    distributions = {dist for name in external for dist in _distributions().get(name, [])}
    return {
        "module": module,
        "code_sha256": {path.relative_to(root).as_posix(): file_sha256(path) for path in files},
        "python": sys.version.split()[0],
        "packages": package_versions(distributions | set(RUNTIME_PACKAGES) | set(packages)),
        "cpu_numerics": cpu_numerics(),
    }


def code_fingerprint(module: str, packages: Iterable[str] = (), root: Path | None = None) -> str:
    """sha256 of :func:`code_identity`: equal only for the same code, versions and numerics."""
    text = json.dumps(code_identity(module, packages, root), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_sha256(record: dict) -> str:
    """sha256 (hex) of a JSON-ready record with sorted keys: the one way a resume key is hashed.

    Evaluate's resume folder (stages/lib/evaluation/resume.py) and train's checkpoint folder
    (stages/lib/training/checkpoints.py) are named by its first 16 hex digits."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
