"""repro: ``dvc repro`` with up to N stages running at once, for a machine with cores to spare.

    python -m tools.repro --jobs 2                          # what `dvc repro` does, two stages at a time
    python -m tools.repro --jobs 2 --dry                    # the stages it would run, in order
    python -m tools.repro train evaluate@baseline           # those stages and what they need, as `dvc repro train ...`
    python -m tools.repro --force train@<run>               # rerun it although nothing changed
    python -m tools.repro --gpus 0,1 train evaluate         # two GPU stages at once, each on its own GPU

Targets are stage names or foreach groups (``train`` is every ``train@<run>``), as ``dvc repro`` takes them:
what is planned is the out-of-date stages among the targets and the stages they depend on, plus whatever
stands downstream of those among them. ``--force`` reruns the targets (every stage without targets) with
``dvc repro --force``. Each stage's DVC output goes to ``logs/repro/<stage>.log`` (``/`` in a name becomes
``_``), rewritten when the stage next runs; the folder is printed on stderr at the start.

DVC runs one stage at a time (treeverse/dvc#755). Most of the smoke pipeline's stages are one
Python process each, whose first 6 s are spent importing torch and transformers on one core, and
the tiny models gain nothing from a second thread; so on two cores two stages at a time finish
the grid in about half the time. The same goes for CPU stages at paper scale (transpile,
translate, package). GPU stages that share one GPU must not overlap: use ``--jobs 1`` there,
or ``--gpus``: every stage that runs torch takes one device group of the list (``0,1``: GPU 0 and GPU 1;
``0+1,2+3``: two GPUs each, for ``train.processes: 2``) as its ``CUDA_VISIBLE_DEVICES`` while it runs, and
waits while none is free; the other stages get ``CUDA_VISIBLE_DEVICES=""``. DVC's experiment queue cannot do
this: its workers all inherit one environment (README, "Scaling out").

How: ``dvc status`` says which stages are out of date; those and every stage downstream of them
are run, each as ``dvc --wait-for-lock repro --single-item <stage>`` once the stages it depends
on have finished (on Linux in a fork of this process, which has DVC imported already: ForkedDvc;
``LDR_REPRO_FORK=0`` starts a new interpreter for each instead). Among the ready stages the one with
the most estimated work still behind it starts first: its own estimate plus the longer of the longest
chain after it and all the work after it shared by N (``dvc.yaml``'s order breaks ties). A stage that runs torch (it depends on
``stages/lib/numerics.py``) counts 12 s, any other 4 s, as measured on the smoke pipeline. So the
corpus stages that gate ``base`` and the grid behind it go first, and the LLINK branch fills the
gaps beside it rather than taking a core while ``base`` waits (first come first run started LLINK
first and left a core idle beside ``base``). DVC itself decides, as in a plain ``dvc repro``,
whether the stage runs, restores from the run-cache or is skipped (through
``tools.dvc_fast_lock``, which reads ``dvc.lock`` with the C parser: 0.6 s less a stage), and records it in
``dvc.lock`` under its repository lock, which it releases while the command runs (the locking
DVC documents for parallel stages). The bytes are those of ``dvc repro``: the stages' outputs
do not depend on the order in which independent stages run, nor on the thread count
(``OMP_NUM_THREADS`` is set to cores / jobs unless already set; stages/lib/numerics.py holds MKL, and
with it ATen, at one thread).

``validate_params`` (the whole params.yaml against the schema) runs alone first when it is out of date,
and the plan is made again after it: its stamp never changes, so only what the edit made stale is run,
and when it fails no other stage starts.

A failing stage stops nothing that is running; no new stage starts, its output is printed, and
the exit status is 1 with the failed and the not-run stages named. Every stage that finished is
already in ``dvc.lock``, so rerunning the command continues where it stopped. SIGTERM or Ctrl-C
is passed on to every running stage (each runs in its own process group: DVC and the stage's
command), which is waited for before the exit (143, or 130 for Ctrl-C), so no stage is left
running on its own. Another DVC process holding the repository's lock is one line, exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


# Run alone and first, then the plan is made again: validate_params checks the whole params.yaml (any edit
# makes it stale) and its stamp never changes, so what is planned after it is only what the edit made stale,
# not every stage downstream of it; and when it fails, no other stage starts.
GATES = ("validate_params",)
# Stages that run torch depend on this file (dvc.yaml); each costs about three plain stages
TORCH_MARKER = "stages/lib/numerics.py"
ESTIMATED_SECONDS = {"torch": 12.0, "plain": 4.0}
# each stage's DVC output, relative to the repository (logs/ is git-ignored)
LOG_DIR = Path("logs") / "repro"
# each stage's DVC in a fork of this process (ForkedDvc) where the platform forks safely (Linux), else a new one
FORK = sys.platform == "linux" and os.environ.get("LDR_REPRO_FORK", "1") != "0"


class UnknownTarget(Exception):
    """A target that is neither a stage nor a foreach group of dvc.yaml."""


class Interrupted(Exception):
    """A signal to stop: passed on to the running stages."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


def stop(running: dict, signum: int, grace: float = 30.0) -> None:
    """Pass ``signum`` to each running stage's process group and wait for it; SIGKILL after ``grace`` s."""
    for process, _, _ in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
    deadline = time.monotonic() + grace
    for process, _, _ in running.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Plan:
    order: list[str]  # the stages to run, in dvc.yaml's (topological) order
    upstream: dict[str, set[str]]  # stage -> the planned stages it depends on
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> its estimated run time
    forced: frozenset[str] = frozenset()  # the planned stages run with --force
    torch: frozenset[str] = frozenset()  # the planned stages that run torch (they depend on TORCH_MARKER)

    def priorities(self, jobs: int = 1) -> dict[str, float]:
        """Each stage's estimate plus a lower bound on the time the planned stages after it need with
        ``jobs`` at once: the longer of their longest chain and all their work shared by ``jobs``. The
        second term is what makes ``base`` (41 stages behind it, a chain of only five) go first."""
        downstream: dict[str, set[str]] = {name: set() for name in self.order}
        for name, deps in self.upstream.items():
            for dep in deps:
                downstream[dep].add(name)
        chain: dict[str, float] = {}
        after: dict[str, set[str]] = {}  # every planned stage downstream, each once
        priority: dict[str, float] = {}
        for name in reversed(self.order):  # topological: every stage after those that depend on it
            own = self.seconds.get(name, ESTIMATED_SECONDS["plain"])
            after[name] = set().union(*([d, *after[d]] for d in downstream[name])) if downstream[name] else set()
            longest = max((chain[d] for d in downstream[name]), default=0.0)
            chain[name] = own + longest
            work = sum(self.seconds.get(d, ESTIMATED_SECONDS["plain"]) for d in after[name])
            priority[name] = own + max(longest, work / max(1, jobs))
        return priority


def resolve(stages: Sequence, targets: Sequence[str]) -> list:
    """The stages each target names: itself, or every item of a foreach group; UnknownTarget otherwise."""
    chosen = []
    for target in targets:
        matches = [s for s in stages if s.addressing == target or s.addressing.startswith(target + "@")]
        if not matches:
            raise UnknownTarget(target)
        chosen += matches
    return chosen


def plan(root: Path, targets: Sequence[str] = (), force: bool = False) -> Plan:
    """Out-of-date stages (forced ones too) and everything downstream of them, limited to the targets and
    what they depend on when targets are given, with the edges between them."""
    import networkx as nx
    from dvc.repo import Repo

    from tools import dvc_fast_lock

    dvc_fast_lock.install()  # the status below reads params.yaml for every stage and dvc.lock: the fast reads
    with contextlib.chdir(root), Repo(".") as repo:  # stage names are relative to the working directory
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        listed = {stage: index for index, stage in enumerate(repo.index.stages)}
        chosen = resolve(list(listed), targets) if targets else list(listed)
        selected = set(chosen).union(*(nx.descendants(graph, s) for s in chosen))  # and what they depend on
        forced = {s.addressing for s in chosen} if force else set()
        stale = set(repo.status())
        # upstream first, ties in dvc.yaml's order
        ordered = list(nx.lexicographical_topological_sort(graph.reverse(copy=False), key=listed.get))
        planned = set()
        for stage in ordered:  # upstream first, so one pass reaches every descendant
            if stage in selected and (stage.addressing in stale | forced
                                      or any(dep in planned for dep in graph.successors(stage))):
                planned.add(stage)
        order = [stage for stage in ordered if stage in planned]
        upstream = {s.addressing: {d.addressing for d in graph.successors(s) if d in planned} for s in order}
        torch = frozenset(s.addressing for s in order if any(str(d.def_path) == TORCH_MARKER for d in s.deps))
        seconds = {s.addressing: ESTIMATED_SECONDS["torch" if s.addressing in torch else "plain"] for s in order}
    return Plan([s.addressing for s in order], upstream, seconds, frozenset(forced), torch)


def parse_gpus(value: str) -> list[str]:
    """``--gpus 0,1`` -> ["0", "1"]; ``0+1,2+3`` -> ["0,1", "2,3"] (a group per stage); each id used once."""
    groups = [group.strip() for group in value.split(",")]
    ids = [gpu for group in groups for gpu in group.split("+")]
    if not all(gpu.strip().isdigit() for gpu in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"--gpus {value!r}: expected GPU indices, each once, e.g. 0,1 or 0+1,2+3")
    return [",".join(gpu.strip() for gpu in group.split("+")) for group in groups]


class Devices:
    """The free device groups; a torch stage holds one while it runs, other stages none (``""``)."""

    def __init__(self, groups: Sequence[str] | None):
        self.free = list(groups) if groups is not None else None
        self.held: dict[str, str] = {}

    def take(self, name: str, work: Plan) -> str | None:
        """The ``CUDA_VISIBLE_DEVICES`` to start ``name`` with; None: no ``--gpus`` (inherit), or wait."""
        if self.free is None:
            return None
        if name not in work.torch:
            return ""
        if not self.free:
            return None
        self.held[name] = self.free.pop(0)
        return self.held[name]

    def ready(self, name: str, work: Plan) -> bool:
        return self.free is None or name not in work.torch or bool(self.free)

    def release(self, name: str) -> None:
        if name in self.held:
            self.free.append(self.held.pop(name))


def command(name: str, work: Plan) -> list[str]:
    """The ``dvc repro`` of one planned stage, through tools.dvc_fast_lock."""
    return [sys.executable, "-m", "tools.dvc_fast_lock", *dvc_arguments(name, work)]


def dvc_arguments(name: str, work: Plan) -> list[str]:
    force = ["--force"] if name in work.forced else []
    return ["--wait-for-lock", "repro", "--single-item", *force, name]


class ForkedDvc:
    """A stage's ``dvc repro`` in a fork of this process, where :func:`command` would start a new interpreter:
    plan() has imported DVC and installed tools.dvc_fast_lock here, which a new interpreter spends about 0.7 s
    of its ~3 s on, for each of 83 stages. The child is what that subprocess would be: its own session (a signal
    to the group reaches DVC and the stage's command), the environment given, stdin /dev/null, stdout and
    stderr into the log; its exit status is DVC's. Offers what stop() and _loop() use of subprocess.Popen."""

    def __init__(self, args: list[str], cwd: Path, env: dict, log: Path):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            os._exit(_run_dvc_here(args, cwd, env, log))

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(["dvc", "repro"], timeout)
            time.sleep(0.05)
        return self.returncode


def _run_dvc_here(args: list[str], cwd: Path, env: dict, log: Path) -> int:
    """In the forked child: become the DVC command and return its exit status (never return into the loop)."""
    code = 1
    try:
        os.setsid()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        for target, fd in ((0, null), (1, out), (2, out)):
            os.dup2(fd, target)
        os.close(out)
        os.close(null)
        # the parent's sys.stdout may be anything (pytest's capture): DVC writes to these fds, as a new process
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        import logging

        from dvc import logger
        from dvc.cli import main as dvc_main

        from tools import dvc_fast_lock

        for name in ("dvc", "dvc_objects", "dvc_data"):  # importing dvc set them up on the parent's streams
            logging.getLogger(name).handlers.clear()
        logger.setup()

        dvc_fast_lock.install_or_warn()  # installed by plan() already: this only says so where it could not be
        code = dvc_main(args)
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    except BaseException:  # noqa: BLE001 - printed into the log, as an uncaught exception would be
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def run(root: Path, jobs: int, out=sys.stdout, targets: Sequence[str] = (), force: bool = False,
        gpus: Sequence[str] | None = None) -> int:
    """Run the plan with up to ``jobs`` stages at once; 0, or 1 with the failures named."""
    started = time.monotonic()
    env = dict(os.environ)
    # the stages' `python -m stages.<stage>` must find this interpreter, as `dvc repro` from the venv would
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    if FORK:  # no thread of this process may hold a lock when it forks: tqdm's monitor thread is the one DVC starts
        import tqdm

        tqdm.tqdm.monitor_interval = 0
    work = plan(root, targets, force)
    gates = [name for name in work.order if name in GATES]
    for gate in gates:
        done = subprocess.run(command(gate, work), cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"repro: {gate} FAILED (exit {done.returncode}); its output:\n{done.stdout}{done.stderr}", file=out)
            print(f"repro: failed: {gate}; no other stage started", file=out)
            return 1
        print(f"repro: {gate} done", file=out, flush=True)
    if gates:  # planned again without them: they have run (a forced one would be planned again)
        again = plan(root, targets, force)
        work = Plan([n for n in again.order if n not in GATES],
                    {n: deps - set(GATES) for n, deps in again.upstream.items() if n not in GATES}, again.seconds, again.forced,
                    again.torch)
    if not work.order:
        print("repro: every stage is up to date", file=out)
        return 0
    pending, running, done, failed = list(work.order), {}, set(), []
    logs = root / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    print(f"repro: each stage's output goes to {logs.resolve()}/<stage>.log", file=sys.stderr, flush=True)
    print(f"repro: {len(pending)} stages, {jobs} at a time (OMP_NUM_THREADS={env['OMP_NUM_THREADS']})"
          + (f", torch stages on GPUs {' | '.join(gpus)}" if gpus else ""), file=out)
    handlers = {signum: signal.signal(signum, _raise_interrupted) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        _loop(root, jobs, work, env, logs, pending, running, done, failed, out, Devices(gpus))
    except Interrupted as stopped:
        for signum in handlers:  # a second Ctrl-C must not abandon the stages being stopped (SIGKILL after 30 s)
            signal.signal(signum, signal.SIG_IGN)
        stop(running, stopped.signum)
        print(f"repro: {stopped}: stopped {', '.join(running) or 'nothing'}; not run: {', '.join(pending) or 'none'}; "
              f"{len(done)} stages finished and recorded in dvc.lock", file=out, flush=True)
        return 128 + stopped.signum
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    elapsed = time.monotonic() - started
    if failed:
        print(f"repro: failed: {', '.join(failed)}; not run: {', '.join(pending) or 'none'}; "
              f"{len(done)} stages finished and recorded in dvc.lock ({elapsed:.1f} s)", file=out)
        return 1
    print(f"repro: {len(done)} stages in {elapsed:.1f} s with {jobs} at a time", file=out)
    return 0


def _loop(root: Path, jobs: int, work: Plan, env: dict, logs: Path, pending: list, running: dict, done: set,
          failed: list, out, devices: Devices | None = None) -> None:
    """Start ready stages, up to ``jobs`` at once (a torch stage also needs a free device group under
    ``--gpus``), until all have run or one failed and the rest finished."""
    from tools import dvc_fast_lock

    devices = devices or Devices(None)
    priority = work.priorities(jobs)
    listed = {name: index for index, name in enumerate(work.order)}
    while pending or running:
        if not failed:
            ready = [n for n in pending if work.upstream[n] <= done]
            for name in sorted(ready, key=lambda n: (-priority[n], listed[n])):
                if len(running) >= jobs:
                    break
                if not devices.ready(name, work):  # every device group is busy: a later stage may need none
                    continue
                pending.remove(name)
                stage_env, device = env, devices.take(name, work)
                if device is not None:
                    stage_env = {**env, "CUDA_VISIBLE_DEVICES": device}
                log = logs / (name.replace("/", "_") + ".log")
                if FORK:
                    dvc_fast_lock.prepare_entries(root / "dvc.lock")  # the child then writes only its own entry
                    process = ForkedDvc(dvc_arguments(name, work), root, stage_env, log)
                else:
                    with log.open("w", encoding="utf-8") as handle:
                        process = subprocess.Popen(  # its own group: a signal reaches DVC and the stage's command
                            command(name, work), cwd=root, env=stage_env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                running[name] = (process, log, time.monotonic())
                print(f"repro: {name} started" + (f" on GPU {device}" if device else ""), file=out, flush=True)
        elif not running:
            break
        time.sleep(0.2)
        for name, (process, log, began) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            devices.release(name)
            seconds = time.monotonic() - began
            if process.returncode == 0:
                done.add(name)
                print(f"repro: {name} done in {seconds:.1f} s", file=out, flush=True)
            else:
                failed.append(name)
                print(f"repro: {name} FAILED (exit {process.returncode}) after {seconds:.1f} s; its output:", file=out)
                print(log.read_text(encoding="utf-8", errors="replace"), file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.repro", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="stages or foreach groups (train, evaluate@baseline) to bring up to date with what they "
                             "need, as `dvc repro TARGET...` (default: every stage)")
    parser.add_argument("--force", "-f", action="store_true",
                        help="rerun the targets (every stage without targets) although nothing changed")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="stages at a time (default: cores)")
    parser.add_argument("--dry", action="store_true",
                        help="print the stages that would run, in dependency order, each with its estimated "
                             "chain of work (what orders the ready stages), and stop")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    parser.add_argument("--gpus", help="GPU indices (0,1) or groups (0+1,2+3): each stage that runs torch gets one "
                        "as its CUDA_VISIBLE_DEVICES while it runs; the others get none (default: inherit)")
    args = parser.parse_args(argv)
    gpus = None
    if args.gpus is not None:
        try:
            gpus = parse_gpus(args.gpus)
        except ValueError as error:
            parser.error(str(error))
    if args.jobs < 1:
        parser.error("--jobs: at least 1")
    from dvc.lock import LockError

    try:
        if not args.dry:
            return run(args.root, args.jobs, targets=args.targets, force=args.force, gpus=gpus)
        work = plan(args.root, args.targets, args.force)
    except UnknownTarget as unknown:
        print(f"repro: no stage or foreach group named {str(unknown)!r} in {(args.root / 'dvc.yaml').resolve()}", file=sys.stderr)
        return 1
    except LockError:
        print(f"repro: another DVC process holds the lock of {args.root.resolve()} (a dvc command or another "
              "tools.repro); run this again when it has finished", file=sys.stderr)
        return 1
    priority = work.priorities(args.jobs)
    for name in work.order:
        print(f"{name}\t{priority[name]:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
