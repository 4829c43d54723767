"""The code side of the resume keys: a stage's project imports, package versions and CPU numerics."""

from __future__ import annotations

import re
import shutil

import yaml

from stages.lib.training import checkpoints
from stages.lib.fingerprint import code_fingerprint, code_identity, import_closure


def write(root, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def test_closure_follows_every_project_import_and_names_the_others(tmp_path):
    write(tmp_path, "stages/__init__.py", "from stages.lib.pin import pin\n")
    write(tmp_path, "stages/lib/__init__.py", "")
    write(tmp_path, "stages/lib/pin.py", "import os\n")
    write(tmp_path, "stages/run.py", "import numpy\nfrom .lib import helper\n\ndef f():\n    from stages.lib.lazy import g\n")
    write(tmp_path, "stages/lib/helper.py", "from . import deep\nimport yaml.constructor\n")
    write(tmp_path, "stages/lib/deep.py", "x = 1\n")
    write(tmp_path, "stages/lib/lazy.py", "import torch\n")
    write(tmp_path, "stages/lib/unrelated.py", "import scipy\n")
    files, external = import_closure("stages.run", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "stages/__init__.py", "stages/lib/__init__.py", "stages/lib/deep.py", "stages/lib/helper.py",
        "stages/lib/lazy.py", "stages/lib/pin.py", "stages/run.py"]
    assert external == {"numpy", "yaml", "torch"}  # os is the standard library's

    before = code_fingerprint("stages.run", root=tmp_path)
    write(tmp_path, "stages/lib/unrelated.py", "import scipy  # edited\n")
    assert code_fingerprint("stages.run", root=tmp_path) == before  # not imported: not part of the key
    write(tmp_path, "stages/lib/lazy.py", "import torch  # edited\n")
    assert code_fingerprint("stages.run", root=tmp_path) != before


def test_the_resuming_stages_are_keyed_by_their_code_packages_and_numerics(tmp_path, repo_root, monkeypatch):
    evaluate = code_identity("stages.evaluate")
    assert {"stages/evaluate.py", "stages/lib/results.py", "stages/lib/extractors.py", "stages/lib/loading.py",
            "stages/lib/numerics.py", "stages/lib/tasks/__init__.py", "stages/__init__.py"} <= set(evaluate["code_sha256"])
    assert {"torch", "transformers", "peft", "accelerate", "tokenizers", "numpy"} <= set(evaluate["packages"])
    assert evaluate["cpu_numerics"]["MKL_CBWR"]
    assert {"stages/train.py", "stages/lib/tables.py", "stages/lib/loading.py"} <= set(code_identity("stages.train")["code_sha256"])

    shutil.copytree(repo_root / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    before = code_fingerprint("stages.evaluate", root=tmp_path)
    assert before == code_fingerprint("stages.evaluate", root=tmp_path)
    (tmp_path / "stages" / "evaluate.py").write_text((tmp_path / "stages" / "evaluate.py").read_text() + "# edited\n")
    assert code_fingerprint("stages.evaluate", root=tmp_path) != before
    edited = code_fingerprint("stages.evaluate", root=tmp_path)
    monkeypatch.setenv("MKL_CBWR", "AUTO")  # an override of the pinned CPU numerics: another key
    assert code_fingerprint("stages.evaluate", root=tmp_path) != edited


def test_a_checkpoint_of_other_code_is_never_resumed(monkeypatch):
    resolved = {"run_id": "r", "train": {"backend": "peft-cpu", "save_steps": 2, "learning_rate": 0.1}}
    monkeypatch.setattr(checkpoints, "code_fingerprint", lambda module, packages: f"{module} as committed")
    committed = checkpoints.checkpoint_fingerprint(resolved)
    monkeypatch.setattr(checkpoints, "code_fingerprint", lambda module, packages: f"{module} edited")
    assert checkpoints.checkpoint_fingerprint(resolved) != committed


def test_the_closure_covers_every_code_dependency_dvc_yaml_declares(repo_root):
    """What DVC reruns a stage for, the resume key covers too: each stages/ dep of a stage (a module, or a
    folder such as stages/lib/tasks) is in its module's import closure."""
    for name, stage in yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        module = re.match(r"python -m (stages\.\w+)", body["cmd"]).group(1)
        files = {path.relative_to(repo_root).as_posix() for path in import_closure(module, repo_root)[0]}
        for dep in body["deps"]:
            code = dep.endswith(".py") or (repo_root / dep).is_dir()  # a data file a module reads is no import
            if dep.startswith("stages/") and "$" not in dep and code:
                covered = dep in files if dep.endswith(".py") else any(f.startswith(dep + "/") for f in files)
                assert covered, f"{name}: {dep} is a dependency but not imported by {module}"
