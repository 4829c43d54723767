"""stages.repro on a throwaway git + DVC repository with a diamond of stages (never the real pipeline)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stages import repro

# DVC's own graph code warns about a pygtrie deprecation when used in-process; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc")

# each stage records when its command ran, so the test can see two of them overlap
STEP = """\
import json, sys, time
from pathlib import Path
name, inputs = sys.argv[1], sys.argv[2:]
if Path("fail-" + name).exists():
    sys.exit("asked to fail")
began = time.time()
time.sleep(1.5)
text = name + ":" + "+".join(Path(p).read_text() for p in inputs)
Path("out").mkdir(exist_ok=True)
Path("out/" + name).write_text(text)
Path("times").mkdir(exist_ok=True)
Path("times/" + name + ".json").write_text(json.dumps([began, time.time()]))
"""

# a -> (b, c) -> d, and e on its own
DVC_YAML = """\
stages:
  a:
    cmd: python step.py a
    deps: [step.py]
    outs: [out/a]
  b:
    cmd: python step.py b out/a
    deps: [step.py, out/a]
    outs: [out/b]
  c:
    cmd: python step.py c out/a
    deps: [step.py, out/a]
    outs: [out/c]
  d:
    cmd: python step.py d out/b out/c
    deps: [step.py, out/b, out/c]
    outs: [out/d]
  e:
    cmd: python step.py e
    deps: [step.py]
    outs: [out/e]
"""


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (tmp_path / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / ".gitignore").write_text("/times\n/fail-*\n")
    git("init", "-q", "-b", "main", cwd=tmp_path)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "diamond", cwd=tmp_path)
    return tmp_path


def spans(project: Path) -> dict[str, tuple[float, float]]:
    return {p.stem: tuple(json.loads(p.read_text())) for p in (project / "times").glob("*.json")}


def overlap(first: tuple[float, float], second: tuple[float, float]) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def test_runs_independent_stages_at_once_in_dependency_order(project):
    assert repro.plan(project).order == ["a", "b", "c", "d", "e"]
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out) == 0, out.getvalue()
    assert (project / "out" / "d").read_text() == "d:b:a:+c:a:"
    ran = spans(project)
    assert ran["a"][1] <= min(ran["b"][0], ran["c"][0]) and max(ran["b"][1], ran["c"][1]) <= ran["d"][0]
    assert overlap(ran["b"], ran["c"]) or overlap(ran["a"], ran["e"])  # two at a time, somewhere
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=project, capture_output=True,
                            text=True, check=True)
    assert json.loads(status.stdout) == {}  # dvc.lock records every stage
    lock = (project / "dvc.lock").read_text()
    assert all(f"\n  {name}:\n" in lock for name in "abcde")

    # nothing out of date: no stage is started
    again = io.StringIO()
    assert repro.run(project, jobs=2, out=again) == 0
    assert "up to date" in again.getvalue() and "started" not in again.getvalue()

    # a changed dependency replans that stage and its descendants only
    (project / "out" / "c").unlink()
    assert repro.plan(project).order == ["c", "d"]


def test_a_failure_stops_what_depends_on_it_and_keeps_what_finished(project):
    (project / "fail-b").write_text("")
    out = io.StringIO()
    assert repro.run(project, jobs=1, out=out) == 1
    report = out.getvalue()
    assert "b FAILED" in report and "asked to fail" in report  # the stage's own output is shown
    assert "failed: b; not run: c, d;" in report  # e was ready before b and c, so it ran first
    assert (project / "out" / "a").exists() and (project / "out" / "e").exists() and not (project / "out" / "d").exists()
    assert "\n  a:\n" in (project / "dvc.lock").read_text()  # what finished is recorded

    (project / "fail-b").unlink()
    assert repro.plan(project).order == ["b", "c", "d"]  # a and e are not rerun
    assert repro.run(project, jobs=2, out=io.StringIO()) == 0
    assert (project / "out" / "d").read_text() == "d:b:a:+c:a:"


def test_jobs_must_be_positive():
    with pytest.raises(SystemExit):
        repro.main(["--jobs", "0"])
