"""Each stage's code dependencies, computed from its imports, against the ``deps:`` dvc.yaml lists.

    python -m tools.deps            # every stage's project files, as dvc.yaml deps lines, and what is missing
    python -m tools.deps --check    # exit 1 naming each stage and file that dvc.yaml does not cover

A stage's code is the import closure of its module within the project (stages.lib.fingerprint: every
``stages`` module it imports, lazy imports inside functions too, transitively, with the package
``__init__`` files run on the way). DVC reruns a stage only for what its ``deps:`` list, so each of those
files must be listed, itself or through a folder above it; otherwise an edit leaves the stage's outputs
stale without a word. A listed ``stages/`` dep that the module does not import is named too (it reruns the
stage for nothing). tests/test_dvc_deps.py runs both checks.
"""

from __future__ import annotations

import argparse
import ast
import functools
import re
import sys
from pathlib import Path

import yaml

from stages.lib.fingerprint import import_closure

ROOT = Path(__file__).resolve().parents[1]
STAGE_COMMAND = re.compile(r"python -m (stages\.\w+)\b")

# Imported but deliberately not a dependency. Keep each with its reason.
EXEMPT = {
    # The params schema: every stage lists the params values it reads (`params:`), params.yaml is fully
    # resolved by tools.configure, and validate_params (which depends on params.yaml and this file)
    # checks the whole file before any other stage runs. Listing it everywhere would rerun every stage
    # for a new description or a new key another stage reads.
    "stages/lib/params.py",
    # How a stage command's process starts (a fork of a warm interpreter, or a plain one): the outputs are
    # the same bytes either way (tests/test_warm.py), so an edit there must not rerun the pipeline.
    "stages/lib/warm.py",
}


def runs_nothing(path: Path) -> bool:
    """A package ``__init__.py`` that holds only a docstring: importing it changes nothing."""
    body = ast.parse(path.read_bytes()).body
    return path.name == "__init__.py" and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def stage_modules(pipeline: dict) -> dict[str, tuple[str, list[str]]]:
    """stage name -> (its module, its deps as written) for every stage of a parsed dvc.yaml."""
    found = {}
    for name, stage in pipeline["stages"].items():
        body = stage.get("do", stage)
        module = STAGE_COMMAND.match(body["cmd"])
        if module is None:
            raise ValueError(f"dvc.yaml: stage {name}: cmd {body['cmd']!r} is not `python -m stages.<module>`")
        found[name] = module.group(1), [d for d in body.get("deps", []) if isinstance(d, str)]
    return found


@functools.lru_cache(maxsize=None)  # a stage module recurs (foreach stages, repeated checks of one tree)
def code_files(module: str, root: Path = ROOT) -> tuple[str, ...]:
    """The project files ``module`` runs that a stage must depend on (repository-relative, sorted)."""
    files, _ = import_closure(module, root)
    return tuple(path.relative_to(root).as_posix() for path in files
                 if path.relative_to(root).as_posix() not in EXEMPT and not runs_nothing(path))


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def drift(pipeline: dict, root: Path = ROOT) -> dict[str, list[str]]:
    """stage -> the project files its module imports that its deps do not cover (stages with none left out)."""
    missing = {}
    for name, (module, deps) in stage_modules(pipeline).items():
        lacking = [path for path in code_files(module, root) if not covered(path, deps)]
        if lacking:
            missing[name] = lacking
    return missing


def stale(pipeline: dict, root: Path = ROOT) -> dict[str, list[str]]:
    """stage -> the ``stages/`` deps it lists that its module does not import (each edit would rerun it for nothing)."""
    found = {}
    for name, (module, deps) in stage_modules(pipeline).items():
        files, _ = import_closure(module, root)
        runs = [path.relative_to(root).as_posix() for path in files]
        code = [dep for dep in deps if dep.startswith("stages/") and "$" not in dep
                and (dep.endswith(".py") or (root / dep).is_dir())]  # a data file a module reads is no import
        extra = [dep for dep in code if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for path in runs)]
        if extra:
            found[name] = extra
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--check", action="store_true",
                        help="only report what dvc.yaml lacks or lists in vain; exit 1 if anything")
    args = parser.parse_args(argv)
    pipeline = yaml.safe_load((args.root / "dvc.yaml").read_text(encoding="utf-8"))
    missing = drift(pipeline, args.root.resolve())
    if not args.check:
        for name, (module, _) in stage_modules(pipeline).items():
            print(f"{name}:  # {module}")
            print("".join(f"  - {path}\n" for path in code_files(module, args.root.resolve())), end="")
    for name, lacking in missing.items():
        for path in lacking:
            print(f"dvc.yaml: stage {name}: imports {path} but does not depend on it", file=sys.stderr)
    extra = stale(pipeline, args.root.resolve())
    for name, paths in extra.items():
        for path in paths:
            print(f"dvc.yaml: stage {name}: depends on {path} but does not import it", file=sys.stderr)
    return 1 if missing or extra else 0


if __name__ == "__main__":
    sys.exit(main())
