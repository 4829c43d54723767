"""A throwaway git + DVC copy of the project, so e2e tests run real `dvc` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("stages", "fixtures", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvc/config", ".dvcignore", ".gitignore")


# Fake credentials in every command's environment: no output, log or dvc.lock may ever hold them.
FAKE_SECRETS = {
    "COHERE_API_KEY": "fake-cohere-key-5f2a9c1e",
    "OPENAI_API_KEY": "sk-fake-openai-key-7d3b8e20",
    "HF_TOKEN": "hf_fakeTokenValue4c6e1a9b",
}


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under ``root`` (git and DVC internals included) whose bytes contain ``secret``."""
    needle = secret.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    # dvc runs each stage's `python -m ...` from PATH: make it this interpreter, venv or not; and, as for
    # a user, in a fork of a warm interpreter (stages/lib/warm.py), shared by every command of these tests
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, **FAKE_SECRETS, "PATH": path, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "LDR_WARM": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", *args], cwd)


def make_project(path: Path) -> Path:
    """Copy the project's tracked pipeline files into a fresh git repository."""
    path.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "project", cwd=path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")
