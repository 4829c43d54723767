"""phases: the study's two phases as local git branches, so that DVC can compare them offline.

    python -m tools.phases sync                          # smoke scale, phase2 and phase3
    python -m tools.phases sync --scale paper --pull     # paper scale, pulling what the remote has
    python -m tools.phases sync --phases phase2 --dry-run
    dvc metrics diff phase2 phase3 && dvc params diff phase2 phase3   # afterwards, offline

For each phase, starting from the commit you are on (the code): on a detached HEAD at that commit,
render params.yaml (``python -m tools.configure --phase P --scale S``), run ``dvc repro``, commit
params.yaml, dvc.lock and the git-tracked outputs (reports/, ``cache: false`` metrics, the
.gitignore files DVC writes), then point branch ``P`` at that commit, creating or moving it. So each
phase branch is always the starting commit plus one "phases sync" commit, and ``git diff main phase2``
shows exactly what the phase changes. Afterwards it returns to where it started (your branch, or the
detached commit) and runs ``dvc checkout`` to put that commit's data back in the workspace.

It refuses to start on uncommitted changes to tracked files, on a phase branch itself, or when an
existing phase branch holds commits other than "phases sync" commits that are not in the starting
commit (``--force`` moves it anyway; the old commits stay in the reflog). Untracked files that were
there before and that the pipeline did not rewrite are never committed. If a step fails, the
workspace is put back at the starting point and the phase branch is left as it was.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

PHASES = ("phase2", "phase3")
MARKER = "phases sync:"  # the subject prefix of the commits this command makes


class PhasesError(RuntimeError):
    """Why sync will not start or did not finish; the message says what to do."""


@dataclass(frozen=True)
class Commands:
    """The commands sync runs besides git, with ``{phase}`` and ``{scale}`` filled in (tests inject others)."""

    configure: tuple[str, ...] = (sys.executable, "-m", "tools.configure", "--phase", "{phase}", "--scale", "{scale}")
    repro: tuple[str, ...] = (sys.executable, "-m", "dvc", "repro")
    checkout: tuple[str, ...] | None = (sys.executable, "-m", "dvc", "checkout", "--allow-missing")

    def fill(self, argv: Sequence[str], phase: str, scale: str) -> list[str]:
        return [a.replace("{phase}", phase).replace("{scale}", scale) for a in argv]


@dataclass(frozen=True)
class Start:
    """Where sync starts and returns: a branch name, or None for a detached HEAD, and its commit."""

    branch: str | None
    sha: str

    @property
    def label(self) -> str:
        return self.branch or self.sha[:12]

    def checkout_args(self) -> list[str]:
        return ["git", "checkout", "-f", self.branch] if self.branch else ["git", "checkout", "-f", "--detach", self.sha]


@dataclass
class Step:
    """One command of the plan. ``mark`` notes the untracked files before the phase's pipeline runs,
    ``add`` stages what the pipeline wrote (both decided when they run)."""

    argv: list[str]
    kind: str = "run"  # run | mark | add

    def show(self) -> str:
        if self.kind == "add":
            return "git add -u && git add <new files, and untracked files the pipeline rewrote>"
        return shlex.join(self.argv)


@dataclass
class Plan:
    start: Start
    phases: list[tuple[str, list[Step]]]
    restore: list[Step] = field(default_factory=list)


# --- git ---------------------------------------------------------------------------------------------------


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise PhasesError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def start_point(repo: Path) -> Start:
    sha = git(repo, "rev-parse", "--verify", "HEAD").strip()
    branch = subprocess.run(["git", "symbolic-ref", "--short", "-q", "HEAD"], cwd=repo, capture_output=True, text=True)
    return Start(branch.stdout.strip() if branch.returncode == 0 else None, sha)


def branch_exists(repo: Path, name: str) -> bool:
    return subprocess.run(["git", "show-ref", "--verify", "--quiet", f"refs/heads/{name}"], cwd=repo).returncode == 0


def untracked(repo: Path) -> dict[str, tuple[int, int]]:
    """Untracked, not ignored files -> (size, mtime_ns): what sync must not sweep into a commit."""
    names = git(repo, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    out = {}
    for name in filter(None, names):
        try:
            info = (repo / name).stat()
        except OSError:
            continue
        out[name] = (info.st_size, info.st_mtime_ns)
    return out


def preflight(repo: Path, start: Start, phases: Sequence[str], force: bool) -> None:
    """Refuse what would lose work: edits to tracked files, running from a phase branch, foreign commits."""
    changed = git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
    if changed:
        listed = "\n  ".join(changed[:20]) + ("\n  ..." if len(changed) > 20 else "")
        raise PhasesError(
            "the working tree has uncommitted changes to tracked files:\n  " + listed
            + "\ncommit or stash them first: sync switches commits and must return to exactly where it started"
        )
    if start.branch in phases:
        raise PhasesError(f"you are on {start.branch!r}, a branch sync writes: check out the code's branch (e.g. main) first")
    for phase in phases:
        if not branch_exists(repo, phase) or force:
            continue
        subjects = git(repo, "log", "--format=%h %s", f"{start.sha}..refs/heads/{phase}").splitlines()
        foreign = [s for s in subjects if not s.split(" ", 1)[-1].startswith(MARKER)]
        if foreign:
            raise PhasesError(
                f"branch {phase!r} has commits that are neither in {start.label} nor made by sync:\n  "
                + "\n  ".join(foreign[:10])
                + f"\nmerge what you need into {start.label}, or pass --force to move {phase!r} anyway (the old "
                "commits stay in the reflog)"
            )


# --- the plan ----------------------------------------------------------------------------------------------


def make_plan(start: Start, phases: Sequence[str], scale: str, pull: bool = False, commands: Commands = Commands()) -> Plan:
    steps = []
    for phase in phases:
        repro = [*commands.fill(commands.repro, phase, scale), *(["--pull"] if pull else [])]
        message = f"{MARKER} {phase} at {scale} scale, from {start.label} ({start.sha[:12]})"
        steps.append((phase, [
            Step(["git", "checkout", "-f", "--detach", start.sha]),
            Step([], kind="mark"),
            Step(commands.fill(commands.configure, phase, scale)),
            Step(repro),
            Step(["git", "add"], kind="add"),
            Step(["git", "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message]),
            Step(["git", "branch", "-f", phase, "HEAD"]),
        ]))
    restore = [Step(start.checkout_args())]
    if commands.checkout:
        restore.append(Step(commands.fill(commands.checkout, "", scale)))
    return Plan(start, steps, restore)


# --- running it --------------------------------------------------------------------------------------------


def stage_outputs(repo: Path, before: dict[str, tuple[int, int]], say: Callable[[str], None]) -> None:
    """Stage tracked changes, files that are new since sync started, and old untracked files the pipeline rewrote."""
    git(repo, "add", "-u")
    now = untracked(repo)
    new = sorted(name for name, stamp in now.items() if before.get(name) != stamp)
    kept = sorted(name for name in now if name not in new)
    if new:
        git(repo, "add", "--pathspec-from-file=-", "--pathspec-file-nul", stdin="\0".join(new))
    say(f"git add -u && git add <{len(new)} new file(s)>" + (f"  (left out, untouched: {', '.join(kept[:5])}"
                                                            f"{' ...' if len(kept) > 5 else ''})" if kept else ""))


def run_step(repo: Path, step: Step, say: Callable[[str], None], env: dict) -> None:
    say(f"$ {shlex.join(step.argv)}")
    done = subprocess.run(step.argv, cwd=repo, env=env, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise PhasesError(f"`{shlex.join(step.argv)}` exited with {done.returncode}")


def execute(repo: Path, plan: Plan, say: Callable[[str], None] = print) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": os.environ.get("DVC_NO_ANALYTICS", "1")}
    before: dict[str, tuple[int, int]] = {}
    failure = None
    try:
        for phase, steps in plan.phases:
            say(f"== {phase}")
            for step in steps:
                if step.kind == "mark":
                    # what is untracked now (yours, or another phase's outputs left behind) is never committed
                    # unless this phase's pipeline rewrites it
                    before = untracked(repo)
                elif step.kind == "add":
                    stage_outputs(repo, before, say)
                else:
                    run_step(repo, step, say, env)
    except PhasesError as error:
        failure = error
    say(f"== back to {plan.start.label}")
    run_step(repo, plan.restore[0], say, env)
    for step in plan.restore[1:]:  # dvc checkout: best effort, the commits are what matter
        try:
            run_step(repo, step, say, env)
        except PhasesError as error:
            say(f"warning: {error}; run `dvc checkout` yourself to restore {plan.start.label}'s data")
    if failure:
        raise PhasesError(f"{failure}; back on {plan.start.label}, the failed phase's branch is unchanged "
                          "(files the failed step created and git does not track may remain)")


def sync(repo: Path | str, phases: Sequence[str] = PHASES, scale: str = "smoke", *, pull: bool = False,
         dry_run: bool = False, force: bool = False, commands: Commands = Commands(),
         say: Callable[[str], None] = print) -> Plan:
    repo = Path(git(Path(repo), "rev-parse", "--show-toplevel").strip())
    start = start_point(repo)
    preflight(repo, start, phases, force)
    plan = make_plan(start, phases, scale, pull, commands)
    if dry_run:
        for phase, steps in plan.phases:
            say(f"== {phase}")
            for step in steps:
                if step.kind != "mark":
                    say(f"$ {step.show()}")
        say(f"== back to {start.label}")
        for step in plan.restore:
            say(f"$ {step.show()}")
        return plan
    execute(repo, plan, say)
    if len(phases) == 2:
        say(f"done: compare with `dvc metrics diff {phases[0]} {phases[1]}` and `dvc params diff {phases[0]} {phases[1]}`")
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.phases", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("sync", help="create or update the local branches phase2 and phase3 from the presets")
    cmd.add_argument("--scale", choices=["smoke", "paper"], default="smoke")
    cmd.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    cmd.add_argument("--pull", action="store_true", help="dvc repro --pull: fetch cached outputs instead of re-running")
    cmd.add_argument("--dry-run", action="store_true", help="print the git and dvc commands, run nothing")
    cmd.add_argument("--force", action="store_true", help="move a phase branch that holds commits sync did not make")
    cmd.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: the current folder)")
    args = parser.parse_args(argv)
    try:
        sync(args.repo, list(dict.fromkeys(args.phases)), args.scale, pull=args.pull, dry_run=args.dry_run, force=args.force)
    except PhasesError as error:
        print(f"phases: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
