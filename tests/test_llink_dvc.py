"""The llink stages under real `dvc repro` in a scratch DVC project (no git): a second repro
does nothing, a ``llink.stage_b`` edit re-runs only Stage B and evaluation, and Stage B re-run
with the old params in a fresh process rebuilds byte-identical outputs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dvc(*args: str, cwd: Path) -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def outs_md5(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for stage in lock.values() for o in stage.get("outs", [])}


def set_margin(repo: Path, margin: float) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["llink"]["stage_b"]["usage"]["margin"] = margin
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make_project(repo: Path) -> None:
    """The project's llink stages and code, with the smoke params shrunk to a few seconds a stage."""
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    # the llink stages and the params gate that llink_data waits for
    stages = {name: body for name, body in pipeline.items() if name.startswith("llink_") or name == "validate_params"}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    llink = params["llink"]
    llink["data"].update(n_train=300, n_dev=64)
    llink["stage_a"].update(steps=40, eval_every=20, eval_pairs=64, warmup_steps=5)
    llink["stage_b"].update(steps=6, micro_batch=8)
    llink["eval"].update(n_gen=4, max_new_tokens=4, n_probe=1, gate_boosts=[1.0])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("init", "--no-scm", "-q", cwd=repo)


def test_llink_stages_under_dvc(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    make_project(repo)
    first = dvc("repro", "llink_eval", cwd=repo)
    assert ran(first) == {"validate_params", "llink_data", "llink_features", "llink_stage_a", "llink_stage_b",
                          "llink_direct", "llink_eval"}
    built = outs_md5(repo)
    assert ran(dvc("repro", "llink_eval", cwd=repo)) == set()

    set_margin(repo, 0.25)
    # the gate checks every params edit; its stamp does not change, so nothing else reruns through it
    assert ran(dvc("repro", "llink_eval", cwd=repo)) == {"validate_params", "llink_stage_b", "llink_eval"}
    assert outs_md5(repo) != built

    set_margin(repo, 0.5)  # back: Stage B rebuilt for real in a new process (no run-cache), byte for byte
    assert ran(dvc("repro", "--no-run-cache", "--single-item", "llink_stage_b", cwd=repo)) == {"llink_stage_b"}
    rebuilt = outs_md5(repo)
    assert {p: rebuilt[p] for p in built if p.startswith("models/llink/stage_b")} == {
        p: md5 for p, md5 in built.items() if p.startswith("models/llink/stage_b")
    }
