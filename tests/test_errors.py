"""One error base (stages.lib.errors.StageError) and one exit status for a stage that fails."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from stages.lib.errors import STAGE_FAILED, StageError, exit_stage
from stages.lib.params import ParamsError

# Exceptions that are not a failed stage; each with its reason.
NOT_STAGE_ERRORS = {
    "SegmentError",  # one file's translation rejected: recorded in the ledger, the stage goes on
    "TranspileError",  # one file rejected by the transpiler: recorded in the ledger, the stage goes on
    "Unavailable",  # no warm interpreter could take a command (stages/lib/warm.py): it runs as a plain process
}


def error_classes(repo_root):
    """(module, class name) of every exception class defined under stages/."""
    for path in sorted((repo_root / "stages").rglob("*.py")):
        module = ".".join(path.relative_to(repo_root).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(base).endswith(("Error", "Exception")) for base in node.bases):
                yield module, node.name


def test_every_error_a_stage_raises_on_purpose_is_a_stage_error(repo_root):
    found = list(error_classes(repo_root))
    assert len(found) > 15
    for module, name in found:
        if name not in NOT_STAGE_ERRORS and name != "StageError":
            assert issubclass(getattr(importlib.import_module(module), name), StageError), f"{module}.{name}"


def test_an_escaping_stage_error_is_one_line_and_the_stage_exit_status(capsys):
    def main():
        raise ParamsError("params.yaml: subset.sede: Extra inputs are not permitted")

    with pytest.raises(SystemExit) as stopped:
        exit_stage(main, "subset")
    assert stopped.value.code == STAGE_FAILED == 2
    assert capsys.readouterr().err == "subset: error: params.yaml: subset.sede: Extra inputs are not permitted\n"
    with pytest.raises(SystemExit) as done:
        exit_stage(lambda: 0, "subset")
    assert done.value.code == 0
    with pytest.raises(KeyError):  # a bug keeps its traceback
        exit_stage(lambda: {}["x"], "subset")


def test_a_stage_run_as_dvc_runs_it_fails_with_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("scale: smoke\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "stages.validate_params", "--params", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == STAGE_FAILED, done.stderr
    assert "Traceback" not in done.stderr and str(bad) in done.stderr


def test_every_stage_ends_through_the_shared_entry_point(repo_root):
    """Each stage module's ``__main__`` block is ``exit_stage(main)`` with the lib's helper (no local namesake)."""
    for path in sorted((repo_root / "stages").glob("*.py")):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert "    exit_stage(main)" in ast.unparse(tree.body[-1]), path.name
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        imported = {alias.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "stages.lib.errors"
                    for alias in node.names}
        assert "exit_stage" in imported and "exit_stage" not in defined, path.name
