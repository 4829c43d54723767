"""DVC's own cost per stage and for a no-op: the dvc.lock rewrite, `dvc repro` of one cheap stage, no-op `dvc repro`.

    python benchmarks/dvc_overhead.py                   # in a built workspace (outputs checked out)
    python benchmarks/dvc_overhead.py --repeat 3 --skip-noop

Times, best of ``--repeat``, each as a fresh process where it is a command:
  * DVC's dump of this workspace's dvc.lock (ruamel's pure-Python emitter) against tools.dvc_fast_lock's
    (libyaml where it writes the same bytes), in this process, and checks the bytes are the same;
  * ``repro --force --single-item validate_params`` (the cheapest stage: the rest is DVC's bookkeeping),
    plain ``python -m dvc`` against ``python -m tools.dvc_fast_lock``;
  * no-op ``dvc repro`` and ``dvc status`` (plain and through tools.dvc_fast_lock); goal: no-op <= 5 s.
Each command's wall time and its CPU time (user + system) are printed: on shared cores the CPU is steadier.
The forced stage rewrites metrics/params-valid.json and dvc.lock to the same bytes; the script checks
dvc.lock is unchanged afterwards. Ends with ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_command(args: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU (user + system) seconds of a command: on shared cores the CPU figure is the steadier."""
    walls, cpus = [], []
    for _ in range(repeat):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        command(args, cwd)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.perf_counter() - start)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(walls), min(cpus)


def command(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="a built DVC workspace (default: here)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-noop", action="store_true", help="time only the lock dump and the forced stage")
    args = parser.parse_args(argv)
    from dvc.utils.serialize import _yaml

    from tools import dvc_fast_lock

    lock_path = args.dir / "dvc.lock"
    text = lock_path.read_text(encoding="utf-8")
    data = _yaml.parse_yaml(text, str(lock_path), typ="safe")
    outputs = {}

    def dump_with(writer):
        out = io.StringIO()
        writer(out)
        outputs[writer] = out.getvalue()

    def dvc_dump(out):
        _yaml._dump(data, out)

    def fast_dump(out):
        dvc_fast_lock.dump_lock(data, out, _yaml._dump)

    result = {"cores": os.cpu_count(), "lock_lines": text.count("\n")}
    result["dump_dvc_s"] = best(lambda: dump_with(dvc_dump), args.repeat)
    result["dump_fast_s"] = best(lambda: dump_with(fast_dump), args.repeat)
    result["dump_identical"] = outputs[dvc_dump] == outputs[fast_dump] == text
    print(f"dvc.lock ({result['lock_lines']} lines) dump: DVC {result['dump_dvc_s']:.2f} s, "
          f"tools.dvc_fast_lock {result['dump_fast_s']:.2f} s, same bytes: {result['dump_identical']}")

    for label, module in (("plain", ["dvc"]), ("fast", ["tools.dvc_fast_lock"])):
        runs = {"force_validate_params": [*module, "repro", "--force", "--single-item", "validate_params"]}
        if not args.skip_noop:
            runs.update(noop_repro=[*module, "repro"], noop_status=[*module, "status"])
        line = f"{label:5} ({' '.join(module)}):"
        for what, argv in runs.items():
            wall, cpu = best_command(argv, args.dir, args.repeat)
            result[f"{what}_{label}_s"], result[f"{what}_{label}_cpu_s"] = wall, cpu
            line += f" {what} {wall:.2f} s (cpu {cpu:.2f} s),"
        print(line.rstrip(","))
    result["lock_unchanged"] = lock_path.read_text(encoding="utf-8") == text
    print(f"dvc.lock unchanged after the forced stages: {result['lock_unchanged']}; {result['cores']} cores; "
          "goal: no-op dvc repro <= 5 s")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0 if result["dump_identical"] and result["lock_unchanged"] else 1


if __name__ == "__main__":
    sys.exit(main())
