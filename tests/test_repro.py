"""tools.repro on a throwaway git + DVC repository with a diamond of stages (never the real pipeline)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools import repro

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


@pytest.mark.parametrize("fork", [True, False], ids=["dvc-forked", "dvc-subprocess"])
def test_runs_independent_stages_at_once_in_dependency_order(project, fork, monkeypatch):
    monkeypatch.setattr(repro, "FORK", fork and repro.FORK)  # a fork of this process where it can, else a new one
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

    # the lock is what a plain `dvc repro` writes, byte for byte (tools.dvc_fast_lock reads it in C).
    # Stages enter a new lock in the order they finish, so the plain run starts from this lock's order.
    plain = project.parent / f"{project.name}-plain"
    subprocess.run(["git", "clone", "-q", str(project), str(plain)], check=True)
    (plain / "dvc.lock").write_text(lock)
    ran = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=plain, check=True, capture_output=True, text=True,
                         env={**os.environ, "LDR_FAST_LOCK": "0"})  # DVC as it is, without the installed patches
    assert ran.stdout.count("Running stage") == 5  # every entry rewritten by DVC itself
    assert (plain / "dvc.lock").read_text() == lock

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
    # a has the longest chain behind it (a, b, d), so it ran first; b then went before c and e
    assert "failed: b; not run: c, d, e;" in report
    assert (project / "out" / "a").exists() and not (project / "out" / "e").exists() and not (project / "out" / "d").exists()
    assert "\n  a:\n" in (project / "dvc.lock").read_text()  # what finished is recorded

    (project / "fail-b").unlink()
    assert repro.plan(project).order == ["b", "c", "d", "e"]  # a is not rerun
    assert repro.run(project, jobs=2, out=io.StringIO()) == 0
    assert (project / "out" / "d").read_text() == "d:b:a:+c:a:"


HOLD_LOCK = """\
import sys, time
from dvc.repo import Repo
with Repo(".").lock:
    print("held", flush=True)
    time.sleep(30)
"""


def test_another_dvc_process_holding_the_lock_is_one_line(project, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK], cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert repro.main(["--root", str(project), "--jobs", "1"]) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert "another DVC process holds the lock" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


SLOW = """\
import os, sys, time
from pathlib import Path
Path("slow.pid").write_text(str(os.getpid()))
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("fork", ["1", "0"], ids=["dvc-forked", "dvc-subprocess"])
def test_sigterm_is_passed_on_to_the_running_stage(project, fork):
    (project / "slow.py").write_text(SLOW)
    (project / "dvc.yaml").write_text("stages:\n  slow:\n    cmd: python slow.py\n    deps: [slow.py]\n    outs: [never]\n")
    child = subprocess.Popen([sys.executable, "-m", "tools.repro", "--root", str(project), "--jobs", "1"],
                             cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "LDR_REPRO_FORK": fork})
    pid_file = project / "slow.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    time.sleep(0.2)
    stage = int(pid_file.read_text())
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM: stopped slow" in output
    deadline = time.monotonic() + 5
    while alive(stage) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(stage)  # not left running on its own


def test_jobs_must_be_positive():
    with pytest.raises(SystemExit):
        repro.main(["--jobs", "0"])


def test_the_longest_estimated_chain_goes_first():
    # x is a cheap stage ahead of a long chain, y a costly one with nothing behind it, z its long side branch
    work = repro.Plan(order=["x", "x2", "x3", "y", "z"], upstream={"x": set(), "x2": {"x"}, "x3": {"x2"}, "y": set(), "z": set()},
                      seconds={"x": 4, "x2": 12, "x3": 12, "y": 12, "z": 20})
    assert work.priorities() == {"x": 28, "x2": 24, "x3": 12, "y": 12, "z": 20}


def test_wide_work_behind_a_stage_counts_shared_by_the_jobs():
    # base has a short chain but ten stages behind it; side is a longer chain of three
    fan = {f"t{i}": {"base"} for i in range(10)}
    work = repro.Plan(order=["base", *fan, "s1", "s2", "s3"],
                      upstream={"base": set(), **fan, "s1": set(), "s2": {"s1"}, "s3": {"s2"}},
                      seconds={"base": 12, **{t: 12 for t in fan}, "s1": 12, "s2": 12, "s3": 12})
    one, two = work.priorities(1), work.priorities(2)
    assert one["base"] == 12 + 120 and two["base"] == 12 + 60  # all ten, shared by the jobs
    assert two["s1"] == 12 + 24  # its chain is longer than its work shared by two
    assert two["base"] > two["s1"]  # a longest-chain-only rule would put s1 (36) before base (24)


def test_torch_stages_are_estimated_from_their_numerics_dependency(project):
    yaml = (project / "dvc.yaml").read_text().replace("deps: [step.py, out/a]\n    outs: [out/c]",
                                                      "deps: [step.py, out/a, numerics.py]\n    outs: [out/c]")
    (project / "dvc.yaml").write_text(yaml)
    (project / "numerics.py").write_text("")
    repro_plan = repro.plan(project)
    assert repro_plan.seconds["b"] == repro.ESTIMATED_SECONDS["plain"]
    assert repro_plan.seconds["c"] == repro.ESTIMATED_SECONDS["plain"]  # only stages/lib/numerics.py marks torch
    (project / "stages" / "lib").mkdir(parents=True)
    (project / "stages" / "lib" / "numerics.py").write_text("")
    (project / "dvc.yaml").write_text(yaml.replace("numerics.py]", "stages/lib/numerics.py]"))
    repro_plan = repro.plan(project)
    assert repro_plan.seconds["c"] == repro.ESTIMATED_SECONDS["torch"]
    # c now outweighs b: a's chain runs through c, and all of b, c and d is more work than that chain
    assert repro_plan.priorities(1)["a"] == 4 + 4 + repro.ESTIMATED_SECONDS["torch"] + 4


def test_the_params_gate_runs_alone_first_and_a_failure_starts_nothing(project):
    """Issue 23 item 2: validate_params is upstream of every stage but its stamp never changes, so an edit
    that reruns it replans only what the edit made stale; when it fails no other stage starts."""
    gate = ("  validate_params:\n    cmd: python gate.py\n    deps: [gate.py, params.yaml]\n"
            "    outs: [{out/valid: {cache: false}}]\n")
    text = (project / "dvc.yaml").read_text().replace("stages:\n", "stages:\n" + gate)
    (project / "dvc.yaml").write_text(text.replace("deps: [step.py]", "deps: [step.py, out/valid]"))
    (project / "gate.py").write_text("import pathlib, sys\nif 'bad' in pathlib.Path('params.yaml').read_text():\n"
                                     "    sys.exit('params.yaml: bad: not a key')\npathlib.Path('out').mkdir(exist_ok=True)\n"
                                     "pathlib.Path('out/valid').write_text('ok')\n")
    (project / "params.yaml").write_text("seed: 1\n")
    first = io.StringIO()
    assert repro.run(project, jobs=2, out=first) == 0, first.getvalue()
    assert repro.plan(project).order == []

    (project / "params.yaml").write_text("seed: 2\n")  # a valid edit no stage lists: only the gate reruns
    assert repro.plan(project).order == ["validate_params", "a", "b", "c", "d", "e"]
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out) == 0
    assert "validate_params done" in out.getvalue() and "every stage is up to date" in out.getvalue()

    (project / "params.yaml").write_text("bad: 1\n")
    (project / "out" / "e").unlink()  # e is out of date too, yet must not start
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out) == 1
    assert "params.yaml: bad: not a key" in out.getvalue() and "failed: validate_params; no other stage started" in out.getvalue()
    assert "repro: e started" not in out.getvalue() and not (project / "out" / "e").exists()


def test_targets_run_only_what_they_need_and_force_reruns_them(project, capsys):
    """Issue 22 item 5: targets as `dvc repro` takes them, --force for the targets, logs in logs/repro/."""
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out, targets=["b"]) == 0, out.getvalue()
    assert (project / "out" / "b").read_text() == "b:a:"
    assert not any((project / "out" / name).exists() for name in "cde")  # not needed by b
    assert sorted(p.name for p in (project / repro.LOG_DIR).iterdir()) == ["a.log", "b.log"]
    assert "Running stage 'b'" in (project / repro.LOG_DIR / "b.log").read_text()
    assert f"{(project / repro.LOG_DIR).resolve()}/<stage>.log" in capsys.readouterr().err  # announced
    assert repro.plan(project, ["b"]).order == []

    first = spans(project)
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out, targets=["b"], force=True) == 0, out.getvalue()
    again = spans(project)
    assert again["b"] != first["b"] and again["a"] == first["a"]  # the target reran, what it needs did not
    assert "repro: b started" in out.getvalue() and "repro: a started" not in out.getvalue()


GROUP = """\
  g:
    foreach: [x, y]
    do:
      cmd: python step.py g-${item} out/a
      deps: [step.py, out/a]
      outs:
        - out/g-${item}
"""


def test_a_foreach_group_expands_and_dry_prints_the_targets_plan(project, capsys):
    (project / "dvc.yaml").write_text(DVC_YAML + GROUP)
    assert repro.plan(project, ["g"]).order == ["a", "g@x", "g@y"]
    assert repro.plan(project, ["g@y", "e"]).order == ["a", "e", "g@y"]
    assert repro.plan(project, ["c"], force=True).forced == {"c"}
    assert repro.main(["--root", str(project), "--dry", "d"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["a", "b", "c", "d"]
    assert not (project / "out").exists()  # --dry ran nothing


def test_an_unknown_target_is_one_line_naming_it(project, capsys):
    assert repro.main(["--root", str(project), "--dry", "b", "trian"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no stage or foreach group named 'trian'" in err[0] and "dvc.yaml" in err[0]
    assert repro.main(["--root", str(project), "trian"]) == 1
    assert not (project / "out").exists() and not (project / "logs").exists()


def torch_project(project: Path) -> Path:
    """b, c and d run torch (they depend on stages/lib/numerics.py); every stage records its CUDA_VISIBLE_DEVICES."""
    (project / "stages" / "lib").mkdir(parents=True)
    (project / "stages" / "lib" / "numerics.py").write_text("")
    (project / "step.py").write_text(STEP.replace(
        'Path("times/" + name + ".json").write_text(json.dumps([began, time.time()]))',
        'import os\nPath("times/" + name + ".json").write_text(json.dumps([began, time.time()]))\n'
        'Path("times/" + name + ".gpu").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))'))
    yaml = (project / "dvc.yaml").read_text()
    yaml = yaml.replace("deps: [step.py, out/a]", "deps: [step.py, out/a, stages/lib/numerics.py]")
    yaml = yaml.replace("deps: [step.py, out/b, out/c]", "deps: [step.py, out/b, out/c, stages/lib/numerics.py]")
    (project / "dvc.yaml").write_text(yaml)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "torch stages", cwd=project)
    return project


def devices(project: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in (project / "times").glob("*.gpu")}


def test_gpus_give_each_running_torch_stage_its_own_device(project):
    torch_project(project)
    assert repro.plan(project).torch == {"b", "c", "d"}
    out = io.StringIO()
    assert repro.run(project, jobs=3, out=out, gpus=repro.parse_gpus("0,1")) == 0, out.getvalue()
    seen, ran = devices(project), spans(project)
    assert seen["a"] == seen["e"] == ""  # no GPU for the stages without torch
    assert {seen["b"], seen["c"]} == {"0", "1"} and seen["d"] in ("0", "1")
    for first in "bcd":
        for second in "bcd":
            if first < second and overlap(ran[first], ran[second]):
                assert seen[first] != seen[second], (first, second, seen)
    assert "b started on GPU" in out.getvalue()


def test_one_gpu_runs_the_torch_stages_one_at_a_time_beside_the_others(project):
    torch_project(project)
    out = io.StringIO()
    assert repro.run(project, jobs=2, out=out, gpus=repro.parse_gpus("3")) == 0, out.getvalue()
    seen, ran = devices(project), spans(project)
    assert seen["b"] == seen["c"] == seen["d"] == "3" and seen["e"] == ""
    assert not overlap(ran["b"], ran["c"])  # the one GPU is held by one stage at a time


def test_gpu_groups_and_bad_lists():
    assert repro.parse_gpus("0,1") == ["0", "1"]
    assert repro.parse_gpus("0+1,2+3") == ["0,1", "2,3"]
    for bad in ("0,0", "a", "0,,1", "1+1"):
        with pytest.raises(ValueError, match="--gpus"):
            repro.parse_gpus(bad)
