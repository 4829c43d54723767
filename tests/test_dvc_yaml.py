"""dvc.yaml stays the map of the code: its stages, modules, deps and params agree with the repo."""

from __future__ import annotations

import re

import yaml

from stages.lib.params import load_params


def pipeline(repo_root) -> dict:
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


def test_every_stage_runs_one_existing_module(repo_root):
    for name, stage in pipeline(repo_root).items():
        body = stage.get("do", stage)
        module = re.match(r"python -m stages\.(\w+)\b", body["cmd"])
        assert module, f"{name}: cmd must be `python -m stages.<module>`"
        assert (repo_root / "stages" / f"{module.group(1)}.py").is_file(), name
        assert f"stages/{module.group(1)}.py" in body["deps"], f"{name} must depend on its own module"


def test_base_deps_are_the_tokenizer_datasets(repo_root):
    params = load_params(repo_root / "params.yaml")
    deps = [d for d in pipeline(repo_root)["base"]["deps"] if d.startswith("data/")]
    assert deps == [f"data/{name}/train-00000-of-00001.parquet" for name in params.base.tokenizer_datasets]


def test_lock_holds_no_stage_that_dvc_yaml_lost(repo_root):
    lock = repo_root / "dvc.lock"
    if not lock.exists():
        return
    names = set(yaml.safe_load(lock.read_text())["stages"])
    declared = set(pipeline(repo_root))
    assert {n.split("@")[0] for n in names} <= declared
