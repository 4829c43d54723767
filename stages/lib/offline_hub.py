"""Run one of the original's analysis scripts untouched, with the Hub replaced by a local tree.

    python -m stages.lib.offline_hub --tree TREE --script PATH [--set NAME=PATH ...] [-- SCRIPT ARGS...]

The original's scripts read the published experiments with ``huggingface_hub.hf_hub_download`` and
``HfApi().list_repo_files``. Here a stand-in ``huggingface_hub`` module answers both from ``TREE``
(a folder in the repository's layout: ``phase3/conditions/...``, ``phase3/analysis/...``), the
script is imported from its own folder (so ``from reparse_results import ...`` finds its sibling),
``--set`` overrides module-level paths the script fixes (``OUT_FILE``), and its ``main()`` runs with
the given arguments. Nothing of the script is copied or edited: it is read from where it lies.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path
from typing import Sequence


def hub_module(tree: Path) -> types.ModuleType:
    """A ``huggingface_hub`` whose download returns the local file and whose listing walks the tree."""
    module = types.ModuleType("huggingface_hub")

    def hf_hub_download(repo_id: str = "", filename: str = "", repo_type: str | None = None, **_) -> str:
        path = tree / filename
        if not path.is_file():
            raise FileNotFoundError(f"offline hub: {filename} is not in {tree} (asked for {repo_id})")
        return str(path)

    class HfApi:
        def list_repo_files(self, repo_id: str = "", repo_type: str | None = None, **_) -> list[str]:
            return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())

    module.hf_hub_download = hf_hub_download
    module.HfApi = HfApi
    return module


def run_script(script: Path, tree: Path, argv: Sequence[str], overrides: dict[str, str]) -> int:
    """Import ``script`` as a module with the offline hub installed, apply ``overrides``, call its ``main``."""
    sys.modules["huggingface_hub"] = hub_module(tree)
    sys.path.insert(0, str(script.parent))
    sys.argv = [str(script), *argv]
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    for name, value in overrides.items():
        if not hasattr(module, name):
            raise SystemExit(f"offline_hub: {script.name} has no module-level {name} to override")
        setattr(module, name, Path(value))
    return int(module.main() or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.lib.offline_hub", description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="the local stand-in of the Hub repository")
    parser.add_argument("--script", type=Path, required=True, help="the original script to run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=PATH", help="override a module-level path")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments, after --")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    return run_script(args.script.resolve(), args.tree.resolve(), rest, overrides)


if __name__ == "__main__":
    sys.exit(main())
