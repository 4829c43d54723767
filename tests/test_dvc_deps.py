"""Code dependencies that cannot drift, and layers that hold.

Each stage's ``deps:`` in dvc.yaml cover every project file its module imports (tools/deps.py), so an edit
of code a stage runs reruns it; no building block in stages/lib imports a stage, no stage imports another,
and nothing under stages/ imports tools/.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stages.lib.fingerprint import imported_names
from tools import deps


@pytest.fixture
def pipeline(repo_root) -> dict:
    return yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))


def test_every_stage_depends_on_every_project_file_it_imports(pipeline):
    assert deps.drift(pipeline) == {}, "run `python -m tools.deps --check` and add what it names to dvc.yaml"


def test_no_stage_lists_code_it_does_not_import(pipeline):
    assert deps.stale(pipeline) == {}, "run `python -m tools.deps --check` and drop what it names from dvc.yaml"


def without(pipeline: dict, stage: str, dep: str) -> dict:
    edited = copy.deepcopy(pipeline)
    body = edited["stages"][stage].get("do", edited["stages"][stage])
    assert dep in body["deps"], f"{stage} no longer lists {dep}: pick another"
    body["deps"].remove(dep)
    return edited


@pytest.mark.parametrize("stage, dep, lacking", [
    ("llink_features", "stages/lib/llink/data.py", ["stages/lib/llink/data.py"]),  # the drift this test was made for
    ("report", "stages/lib/results.py", ["stages/lib/results.py"]),
    ("train", "stages/lib/tables.py", ["stages/lib/tables.py"]),
    ("evaluate@", "stages/lib/tasks", ["stages/lib/tasks/__init__.py"]),  # a folder dep (foreach stage)
    ("manifest", "stages/lib/paths.py", ["stages/lib/paths.py"]),  # the adapter-folder rule
])
def test_a_dependency_removed_from_a_copy_of_dvc_yaml_is_named(pipeline, stage, dep, lacking):
    name = stage.rstrip("@")
    assert deps.drift(without(pipeline, name, dep)) == {name: lacking}


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_lazy_imports_and_packages_that_run_code_count_docstring_packages_and_the_schema_do_not(tmp_path):
    write(tmp_path, "stages/__init__.py", "from stages.lib.pin import pin\npin()\n")
    write(tmp_path, "stages/lib/__init__.py", '"""Building blocks."""\n')  # only a docstring: exempt
    write(tmp_path, "stages/lib/pin.py", "def pin():\n    pass\n")
    write(tmp_path, "stages/lib/params.py", "X = 1\n")  # deps.EXEMPT, with its reason
    write(tmp_path, "stages/lib/lazy.py", "Y = 2\n")
    write(tmp_path, "stages/lib/unused.py", "Z = 3\n")
    write(tmp_path, "stages/run.py",
          "from stages.lib.params import X\n\ndef main():\n    from stages.lib import lazy\n    return lazy.Y + X\n")
    stage = {"cmd": "python -m stages.run", "deps": ["stages/run.py", "stages/__init__.py"]}
    assert deps.drift({"stages": {"run": stage}}, tmp_path) == {"run": ["stages/lib/lazy.py", "stages/lib/pin.py"]}
    stage["deps"] += ["stages/lib"]  # a folder covers what lies under it
    assert deps.drift({"stages": {"run": stage}}, tmp_path) == {}


def test_the_check_exits_1_naming_stage_and_file(tmp_path, capsys):
    write(tmp_path, "stages/__init__.py", '"""Stages."""\n')
    write(tmp_path, "stages/lib/__init__.py", "")
    write(tmp_path, "stages/lib/tables.py", "T = 1\n")
    write(tmp_path, "stages/run.py", "from stages.lib.tables import T\n")
    write(tmp_path, "dvc.yaml", yaml.safe_dump({"stages": {"run": {"cmd": "python -m stages.run --x 1",
                                                                    "deps": ["stages/run.py"]}}}))
    assert deps.main(["--root", str(tmp_path), "--check"]) == 1
    assert "dvc.yaml: stage run: imports stages/lib/tables.py but does not depend on it" in capsys.readouterr().err
    write(tmp_path, "stages/lib/old.py", "O = 1\n")
    write(tmp_path, "stages/lib/facts.tsv", "a\tb\n")  # data a module reads: a dependency, never an import
    write(tmp_path, "dvc.yaml", yaml.safe_dump({"stages": {"run": {"cmd": "python -m stages.run", "deps": [
        "stages/run.py", "stages/lib/tables.py", "stages/lib/old.py", "stages/lib/facts.tsv"]}}}))
    assert deps.main(["--root", str(tmp_path), "--check"]) == 1
    assert capsys.readouterr().err == "dvc.yaml: stage run: depends on stages/lib/old.py but does not import it\n"


# A lib module that still imports a stage, and why. Each entry is a move under way; remove it when done.
LAYERING_EXCEPTIONS = {
    # the pure reparse core is moving from stages/reparse.py into stages/lib (on another branch)
    ("stages/lib/results_index.py", "stages.reparse"),
}

# A stage that still imports another, and why; remove the entry once the shared part lives in stages/lib.
STAGE_EXCEPTIONS: set[tuple[str, str]] = set()


def stage_names(repo_root: Path) -> set[str]:
    return {f"stages.{path.stem}" for path in (repo_root / "stages").glob("*.py") if path.stem != "__init__"}


def project_imports(repo_root: Path, folder: str, prefixes: tuple[str, ...]):
    """(file, imported module) for every import in ``folder`` of a module named by ``prefixes``."""
    for path in sorted((repo_root / folder).rglob("*.py")):
        relative = path.relative_to(repo_root)
        name = ".".join(relative.with_suffix("").parts)
        for module in imported_names(path, name.removesuffix(".__init__")):
            if module.startswith(prefixes):
                yield relative.as_posix(), module


def test_no_lib_module_imports_a_stage_and_no_stage_another(repo_root):
    stages = stage_names(repo_root)
    lib = {(file, module) for file, module in project_imports(repo_root, "stages/lib", ("stages.",))
           if module in stages}
    assert lib <= LAYERING_EXCEPTIONS, lib - LAYERING_EXCEPTIONS
    crossing = {(file, module) for file, module in project_imports(repo_root, "stages", ("stages.",))
                if module in stages and "/lib/" not in file and file != f"{module.replace('.', '/')}.py"}
    assert crossing <= STAGE_EXCEPTIONS, "move what stages share into stages/lib"
    assert list(project_imports(repo_root, "stages", ("tools",))) == [], "tools use stages, never the reverse"


def test_layering_sees_a_stage_imported_inside_a_function(tmp_path):
    write(tmp_path, "stages/__init__.py", "")
    write(tmp_path, "stages/train.py", "")
    write(tmp_path, "stages/lib/__init__.py", "")
    write(tmp_path, "stages/lib/rule.py", "def f():\n    from stages.train import adapter_folder\n")
    found = {(f, m) for f, m in project_imports(tmp_path, "stages/lib", ("stages.",)) if m in stage_names(tmp_path)}
    assert found == {("stages/lib/rule.py", "stages.train")}
