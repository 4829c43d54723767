"""tools.verify on tiny throwaway git + DVC repositories (never the real pipeline)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools import verify

DETERMINISTIC = """\
from pathlib import Path
Path("out").mkdir(exist_ok=True)
Path("metrics").mkdir(exist_ok=True)
Path("out/data.txt").write_text("the same bytes every time\\n")
Path("metrics/score.json").write_text('{"acc": 0.5}\\n')
# differs per clone (its folder), like a git SHA would between commits: excluded by name
Path("metrics/provenance.json").write_text('{"where": "%s"}\\n' % Path.cwd().name)
"""

RANDOM = DETERMINISTIC + """\
import os, time
Path("metrics/stamp.json").write_text('{"at": %d, "noise": "%s"}\\n' % (time.time_ns(), os.urandom(8).hex()))
"""

DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps:
      - make.py
    outs:
      - out/data.txt
      - metrics/score.json:
          cache: false
"""


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


def make_repo(path: Path, script: str, extra_outs: str = "", always_changed: bool = False) -> Path:
    """A one-stage git + DVC repository (the .dvc folder written by hand, as `dvc init` would), with its
    results committed as the real repository's are."""
    (path / ".dvc").mkdir(parents=True)
    (path / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (path / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    (path / "make.py").write_text(script)
    dvc_yaml = DVC_YAML + extra_outs + ("    always_changed: true\n" if always_changed else "")
    (path / "dvc.yaml").write_text(dvc_yaml)
    git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "tiny", cwd=path)
    verify.run_dvc(["repro"], path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "results", cwd=path)
    return path


def test_identical_rebuilds_pass(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    repo = make_repo(tmp_path / "repo", DETERMINISTIC)
    code = verify.main(["--repo", str(repo), "--workdir", str(tmp_path / "work"), "--repro-args", "repro make"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "2 of 2 outputs identical" in printed
    assert "1 of 1 metric and report files identical" in printed  # score.json; provenance.json excluded
    assert "1 provenance.json excluded" in printed
    assert "1 of 1 committed metric, report and inventory files rebuilt as committed" in printed
    assert "second repro ran nothing" in printed
    assert not (tmp_path / "work" / "a").exists()  # removed without --keep


def test_a_time_dependent_output_is_named(tmp_path: Path) -> None:
    extra = "      - metrics/stamp.json:\n          cache: false\n"
    repo = make_repo(tmp_path / "repo", RANDOM, extra_outs=extra)
    (tmp_path / "work").mkdir()
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            lines.append(text)

    code = verify.verify(repo, tmp_path / "work", ["repro"], out=Out())
    printed = "".join(lines)
    assert code == 1
    differing = [line for line in printed.splitlines() if line.startswith("DIFFERS")]
    # the two clones' lock entries and files, and the committed file against the rebuild
    assert differing == [line for line in differing if "metrics/stamp.json" in line] and len(differing) == 3
    assert "metrics/stamp.json: differs from the commit" in printed
    assert "2 of 3 outputs identical" in printed
    assert "1 of 2 metric and report files identical" in printed
    assert (tmp_path / "work" / "a" / "out" / "data.txt").exists()  # verify() itself never deletes


THREAD_DEPENDENT = DETERMINISTIC + """\
import os
Path("metrics/score.json").write_text('{"threads": "%s"}\\n' % os.environ.get("OMP_NUM_THREADS"))
"""


def test_an_output_that_depends_on_the_machine_is_named_unless_same_machine(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", THREAD_DEPENDENT)
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            lines.append(text)

    assert verify.verify(repo, tmp_path / "work", ["repro"], out=Out()) == 1
    assert "DIFFERS metrics/score.json: bytes differ" in "".join(lines)
    assert "OMP_NUM_THREADS=1" in "".join(lines)
    assert verify.verify(repo, tmp_path / "same", ["repro"], out=Out(), second_machine=None) == 0


def test_committed_results_that_head_does_not_rebuild_are_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", DETERMINISTIC)
    (repo / "metrics" / "score.json").write_text('{"acc": 0.9}\n')  # hand-edited, or from other code
    (repo / "metrics" / "old.json").write_text("{}\n")  # a result no stage writes any more
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "stale", cwd=repo)
    comparison = verify.Comparison()
    work = verify.clone(repo, tmp_path / "a")
    verify.run_dvc(["repro"], work)
    verify.compare_with_commit(work, comparison)
    assert comparison.commit_differences == ["metrics/score.json: differs from the commit"]
    assert comparison.committed == 2  # score.json and old.json; provenance.json excluded


def test_noop_check_names_a_stage_that_runs_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", DETERMINISTIC, always_changed=True)
    verify.run_dvc(["repro"], repo)
    problems = verify.check_noop(repo, ["repro"])
    assert any("ran" in p and "make" in p for p in problems), problems


def test_repro_targets_are_what_status_checks() -> None:
    assert verify.repro_targets(["repro"]) == []
    assert verify.repro_targets(["repro", "-j", "2", "subset", "--force", "fetch@code"]) == ["subset", "fetch@code"]


def test_lock_comparison_names_missing_and_changed_outputs() -> None:
    comparison = verify.Comparison()
    verify.compare_locks({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9"}, comparison)
    assert comparison.outputs == 3
    assert comparison.output_differences == ["b: md5 2 vs 9", "c: an output of only one clone's dvc.lock"]


def test_lock_outputs_reads_every_stage(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text(textwrap.dedent("""\
        schema: '2.0'
        stages:
          fetch@code:
            cmd: python -m stages.fetch
            outs:
            - path: data/raw/code
              hash: md5
              md5: abc.dir
          report:
            cmd: python -m stages.report
            deps:
            - path: stages/report.py
              md5: notanout
            outs:
            - path: reports/runs.csv
              hash: md5
              md5: def
        """))
    assert verify.lock_outputs(lock) == {"data/raw/code": "abc.dir", "reports/runs.csv": "def"}


def test_cli_help_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "tools.verify", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and "--repro-args" in done.stdout
