"""Time the smoke pipeline as a new user meets it: `dvc repro` in a clean clone, then a no-op repro.

    python benchmarks/pipeline_speed.py [--repo .] [--keep] [--target STAGE ...] [--jobs N]

Clones the repository's HEAD into a temporary folder (so uncommitted edits are not
measured), runs `dvc repro` there with this interpreter's environment (with ``--jobs N`` above
1, ``python -m tools.repro --jobs N`` instead: N stages at a time), then runs `dvc repro` a
second time, and prints both wall times with the machine's core count against the goals
(a clean smoke repro <= 5 min with ``--jobs 2``, <= 10 min as plain ``dvc repro``; a no-op repro <= 5 s). Nothing is written to the repository.
``--target`` reproduces only those stages and their upstream (a quick check; the goals are
for the whole pipeline). The last line, ``RESULT {json}``, is for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

# issue 18: a clean build in 5 min two stages at a time (tools.repro --jobs 2), in 10 min with plain `dvc repro`
# (the README's main command, one stage at a time); a no-op in 5 s
GOALS = {"smoke dvc repro, clean clone": 300.0, "no-op dvc repro": 5.0}
PLAIN_CLEAN_GOAL = 600.0


def goal(name: str, jobs: int) -> float:
    return PLAIN_CLEAN_GOAL if jobs == 1 and name == "smoke dvc repro, clean clone" else GOALS[name]


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", action="store_true", help="keep the clone and print where it is")
    parser.add_argument("--target", nargs="+", default=[], help="stages to reproduce (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="stages at a time for the clean run (1: plain dvc repro)")
    args = parser.parse_args(argv)
    if args.jobs > 1 and args.target:
        parser.error("--jobs runs the whole pipeline; give no --target with it")

    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    folder = Path(tempfile.mkdtemp(prefix="ldr-bench-"))
    clone = folder / "repo"
    try:
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        dvc = [sys.executable, "-m", "dvc", "repro", *args.target]
        clean = dvc if args.jobs == 1 else [sys.executable, "-m", "tools.repro", "--jobs", str(args.jobs)]
        figures = {"smoke dvc repro, clean clone": timed(clean, clone, env), "no-op dvc repro": timed(dvc, clone, env)}
    finally:
        if args.keep:
            print(f"clone kept at {clone}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print(f"machine: {describe()}; clean run: {'dvc repro' if args.jobs == 1 else f'tools.repro --jobs {args.jobs}'}")
    print(f"{'measure':<32} {'seconds':>9} {'goal':>8}  met")
    for name, seconds in figures.items():
        limit = goal(name, args.jobs)
        print(f"{name:<32} {seconds:>9.1f} {limit:>8.0f}  {'yes' if seconds <= limit else 'NO'}")
    result = {"repro_s": figures["smoke dvc repro, clean clone"], "noop_s": figures["no-op dvc repro"],
              "targets": args.target, "jobs": args.jobs, "cores": os.cpu_count(), "machine": describe(), "clone": str(clone) if args.keep else None}
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
