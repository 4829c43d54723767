"""tools.phases sync in a temporary git repository, with a trivial pipeline injected in place of the real one.

The injected "configure" writes ``params.yaml`` with the phase and scale; the injected "repro" writes
``reports/metrics.json`` from it. The last test runs real ``dvc repro`` and ``dvc metrics diff`` on a
one-stage DVC project (the full pipeline's end-to-end run lives in tests/e2e).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools import phases
from tools.phases import Commands, PhasesError

CONFIGURE = (sys.executable, "-c",
             "import sys; open('params.yaml', 'w').write(f'phase: {sys.argv[1]}\\nscale: {sys.argv[2]}\\n')",
             "{phase}", "{scale}")
REPORT = """import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
phase2 = p["phase"] == "phase2"
m = {"xnli": {"baseline": {"acc_strict": 0.5 if phase2 else 0.6}}}
m["mgsm" if phase2 else "sib200"] = {"baseline": {"acc_strict": 0.1}}
pathlib.Path("reports").mkdir(exist_ok=True)
pathlib.Path("reports/metrics.json").write_text(json.dumps(m, sort_keys=True))
"""
FAKE = Commands(configure=CONFIGURE, repro=(sys.executable, "report.py"), checkout=None)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": "/dev/null"}.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "report.py").write_text(REPORT)
    (root / "params.yaml").write_text("phase: phase3\nscale: smoke\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "the code")
    return root


def lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_dry_run_prints_the_plan_and_changes_nothing(repo, capsys):
    head = git(repo, "rev-parse", "HEAD")
    phases.sync(repo, dry_run=True, pull=True)
    out = lines(capsys)
    py = sys.executable
    assert out[:7] == [
        "== phase2",
        f"$ git checkout -f --detach {head}",
        f"$ {py} -m tools.configure --phase phase2 --scale smoke",
        f"$ {py} -m dvc repro --pull",
        "$ git add -u && git add <new files, and untracked files the pipeline rewrote>",
        f"$ git commit --quiet --allow-empty --no-verify -m 'phases sync: phase2 at smoke scale, from main ({head[:12]})'",
        "$ git branch -f phase2 HEAD",
    ]
    assert out[7] == "== phase3" and out[9] == f"$ {py} -m tools.configure --phase phase3 --scale smoke"
    assert out[-3:] == ["== back to main", "$ git checkout -f main", f"$ {py} -m dvc checkout --allow-missing"]
    assert git(repo, "branch", "--list", "phase*") == ""
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""


def test_cli_dry_run_paper_one_phase(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert phases.main(["sync", "--scale", "paper", "--phases", "phase2", "--dry-run"]) == 0
    out = "\n".join(lines(capsys))
    assert "--phase phase2 --scale paper" in out and "phase3" not in out and "--pull" not in out


def test_dirty_tree_is_refused(repo, capsys):
    (repo / "report.py").write_text(REPORT + "# an edit\n")
    with pytest.raises(PhasesError, match="uncommitted changes to tracked files"):
        phases.sync(repo, dry_run=True)
    assert phases.main(["sync", "--repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "M report.py" in err and "commit or stash" in err
    assert git(repo, "branch", "--list", "phase*") == ""


def test_staged_change_is_refused_too(repo):
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    with pytest.raises(PhasesError, match="uncommitted"):
        phases.sync(repo, commands=FAKE)


def test_sync_commits_each_phase_and_returns(repo, capsys):
    (repo / "notes.txt").write_text("mine, untracked")
    head = git(repo, "rev-parse", "HEAD")
    phases.sync(repo, commands=FAKE)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main" and git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == "?? notes.txt"
    assert (repo / "notes.txt").read_text() == "mine, untracked"
    assert not (repo / "reports").exists()  # main's tree, exactly
    for phase, acc in (("phase2", 0.5), ("phase3", 0.6)):
        assert git(repo, "rev-parse", f"{phase}~1") == head
        assert git(repo, "log", "-1", "--format=%s", phase).startswith(f"phases sync: {phase} at smoke scale, from main")
        assert git(repo, "show", f"{phase}:params.yaml") == f"phase: {phase}\nscale: smoke"
        assert json.loads(git(repo, "show", f"{phase}:reports/metrics.json"))["xnli"]["baseline"]["acc_strict"] == acc
        assert "notes.txt" not in git(repo, "ls-tree", "-r", "--name-only", phase)
    assert "done: compare with `dvc metrics diff phase2 phase3`" in capsys.readouterr().out


def test_second_sync_moves_the_branches(repo):
    phases.sync(repo, commands=FAKE)
    (repo / "report.py").write_text(REPORT + "# v2\n")
    git(repo, "commit", "-qam", "v2 of the code")
    phases.sync(repo, commands=FAKE)
    head = git(repo, "rev-parse", "HEAD")
    for phase in ("phase2", "phase3"):
        assert git(repo, "rev-parse", f"{phase}~1") == head


def test_from_a_detached_head_it_returns_detached(repo):
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    phases.sync(repo, ["phase2"], commands=FAKE)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD" and git(repo, "rev-parse", "HEAD") == head


def test_foreign_commits_on_a_phase_branch_need_force(repo):
    phases.sync(repo, ["phase2"], commands=FAKE)
    git(repo, "checkout", "-q", "phase2")
    (repo / "extra.txt").write_text("hand-made")
    git(repo, "add", "extra.txt")
    git(repo, "commit", "-qm", "a hand-made commit")
    with pytest.raises(PhasesError, match="you are on 'phase2'"):
        phases.sync(repo, ["phase2"], commands=FAKE)
    git(repo, "checkout", "-q", "main")
    with pytest.raises(PhasesError, match="a hand-made commit"):
        phases.sync(repo, ["phase2"], commands=FAKE)
    phases.sync(repo, ["phase2"], commands=FAKE, force=True)
    assert git(repo, "rev-parse", "phase2~1") == git(repo, "rev-parse", "main")


def test_a_failing_step_returns_and_leaves_the_branch(repo):
    phases.sync(repo, ["phase2"], commands=FAKE)
    before = git(repo, "rev-parse", "phase2")
    failing = Commands(configure=CONFIGURE, repro=(sys.executable, "-c", "raise SystemExit(3)"), checkout=None)
    with pytest.raises(PhasesError, match="exited with 3"):
        phases.sync(repo, ["phase2"], commands=failing)
    assert git(repo, "rev-parse", "phase2") == before
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main" and git(repo, "status", "--porcelain") == ""


def test_untracked_file_rewritten_by_the_pipeline_is_committed(repo):
    (repo / "reports").mkdir()
    (repo / "reports" / "metrics.json").write_text("{}")  # an output of an earlier, uncommitted run
    phases.sync(repo, ["phase3"], commands=FAKE)
    assert "sib200" in json.loads(git(repo, "show", "phase3:reports/metrics.json"))


@pytest.mark.e2e
def test_dvc_metrics_and_params_diff_between_the_branches(repo):
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(
        "stages:\n  report:\n    cmd: python report.py\n    deps: [report.py]\n    params: [phase]\n"
        "    metrics:\n      - reports/metrics.json:\n          cache: false\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a dvc project")
    real = Commands(configure=CONFIGURE, repro=(*dvc, "repro"), checkout=(*dvc, "checkout", "--allow-missing"))
    phases.sync(repo, commands=real)
    assert git(repo, "status", "--porcelain") == ""
    assert "dvc.lock" in git(repo, "ls-tree", "--name-only", "phase2")
    diff = json.loads(subprocess.run([*dvc, "metrics", "diff", "phase2", "phase3", "--json"], cwd=repo, check=True,
                                     capture_output=True, text=True).stdout)["reports/metrics.json"]
    assert diff["xnli.baseline.acc_strict"]["old"] == 0.5 and diff["xnli.baseline.acc_strict"]["new"] == 0.6
    assert diff["mgsm.baseline.acc_strict"]["new"] is None and diff["sib200.baseline.acc_strict"]["old"] is None
    params = json.loads(subprocess.run([*dvc, "params", "diff", "phase2", "phase3", "--json"], cwd=repo, check=True,
                                       capture_output=True, text=True).stdout)["params.yaml"]
    assert params["phase"] == {"old": "phase2", "new": "phase3"}
