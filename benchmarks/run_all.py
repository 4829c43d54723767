"""Every speed figure of the study in one table: what, figure, goal, met, with the core count.

    python benchmarks/run_all.py                 # full size: ~2.2 GB temp corpus, a clean-clone smoke repro
    python benchmarks/run_all.py --quick         # scaled-down variants, a fast check of the entry point
    python benchmarks/run_all.py --only transpile eval

Runs each script of this folder as a subprocess with this interpreter, from the repository root,
and reads the ``RESULT {json}`` line each prints last (their human output is echoed as it comes):

- ``pipeline_speed.py``: the smoke pipeline in a clean clone of HEAD (<= 5 min), with ``--jobs`` stages at
  a time (default: the core count, through ``python -m tools.repro``; ``--jobs 1``: plain ``dvc repro``, <= 10 min),
  then the no-op ``dvc repro`` (<= 5 s);
- ``transpile_speed.py --goal-only``: 5,000 real files, 2 workers, round trip verified (<= 10 s);
- ``report_speed.py``: reparse + report over a synthetic corpus of the published size (<= 60 s);
- ``eval_speed.py``: batched (32) against one-at-a-time generation on the smoke base (>= 5x).

The evaluation needs a smoke base model: the pipeline clone's ``models/base`` when it was built there,
else this checkout's; without either the row says so. ``--quick`` reproduces only up to ``subset``,
transpiles 500 files (the figure is extrapolated to 5,000), writes 5% of the rows per cell and times
each generation side once; the table marks those rows, and a goal is judged only where the quick
figure still measures it. Exit status: 2 if a script failed, 1 if a goal was missed, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from machine import describe
from pipeline_speed import goal as pipeline_goal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ("pipeline", "transpile", "report", "eval")


@dataclass
class Row:
    what: str
    figure: str
    goal: str
    met: str  # "yes", "NO", or why it is not judged


def run_script(script: str, args: list[str]) -> tuple[dict | None, str, str]:
    """Run one benchmark script: its RESULT json (None if it failed), on failure why, and its stdout."""
    cmd = [sys.executable, str(HERE / script), *args]
    print(f"$ {' '.join(cmd[1:])}", flush=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    result = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print(f"  {line}")
    if done.returncode != 0 or result is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        return None, f"{script} exited {done.returncode}:\n" + "\n".join(tail), done.stdout
    return result, "", done.stdout


def judged(value: float, goal: float, at_most: bool, quick_note: str | None) -> str:
    if quick_note:
        return quick_note
    return "yes" if (value <= goal if at_most else value >= goal) else "NO"


def pipeline_rows(quick: bool, jobs: int, failures: list[str]) -> tuple[list[Row], Path | None]:
    args = ["--keep"] + (["--target", "subset"] if quick else ["--jobs", str(jobs)])
    result, error, stdout = run_script("pipeline_speed.py", args)
    label = " (quick: up to subset)" if quick else ("" if jobs == 1 else f", {jobs} stages at a time")
    # pipeline_speed.py's own goals; a quick run is one without --jobs there: plain `dvc repro`
    clean_goal = pipeline_goal("smoke dvc repro, clean clone", 1 if quick else jobs)
    noop_goal = pipeline_goal("no-op dvc repro", jobs)
    clean_text, noop_text = f"<= {clean_goal / 60:g} min", f"<= {noop_goal:g} s"
    if result is None:
        failures.append(error)
        kept = [line.split("clone kept at ", 1)[1] for line in stdout.splitlines() if "clone kept at " in line]
        return [Row("smoke dvc repro, clean clone" + label, "failed", clean_text, "-"),
                Row("no-op dvc repro" + label, "failed", noop_text, "-")], Path(kept[0]) if kept else None
    note = "n/a (quick)" if quick else None
    rows = [
        Row("smoke dvc repro, clean clone" + label, f"{result['repro_s']:.1f} s", clean_text,
            judged(result["repro_s"], clean_goal, True, note)),
        Row("no-op dvc repro" + (label if quick else ""), f"{result['noop_s']:.1f} s", noop_text,
            judged(result["noop_s"], noop_goal, True, note)),
    ]
    return rows, Path(result["clone"]) if result.get("clone") else None


def transpile_row(quick: bool, failures: list[str]) -> Row:
    files = 500 if quick else 5000
    result, error, _ = run_script("transpile_speed.py", ["--goal-only", "--files", str(files)])
    what = "transpile 5,000 files, 2 workers, round trip" + (" (quick: 500, extrapolated)" if quick else "")
    if result is None:
        failures.append(error)
        return Row(what, "failed", "<= 10 s", "-")
    seconds = result["seconds_for_goal_files"]
    figure = f"{seconds:.1f} s" + (f" ({result['seconds']:.2f} s for {result['files']})" if quick else "")
    if result["ok"] != result["files"]:
        figure += f", {result['files'] - result['ok']} not ok"
    return Row(what, figure, "<= 10 s", judged(seconds, 10, True, None) + (" (extrapolated)" if quick else ""))


def report_row(quick: bool, failures: list[str]) -> Row:
    scale = 0.05 if quick else 1.0
    result, error, _ = run_script("report_speed.py", ["--scale", str(scale), "--jobs", "2"])
    what = "reparse + report, published-size synthetic corpus" + (" (quick: scale 0.05)" if quick else "")
    if result is None:
        failures.append(error)
        return Row(what, "failed", "<= 60 s", "-")
    figure = (f"{result['total_s']:.1f} s ({result['reparse_s']:.1f} + {result['report_s']:.1f}; "
              f"{result['files']} files, {result['mb']:.0f} MB)")
    return Row(what, figure, "<= 60 s", judged(result["total_s"], 60, True, "n/a (quick)" if quick else None))


def eval_row(quick: bool, clone: Path | None, failures: list[str]) -> Row:
    what = "batched (32) vs one-at-a-time evaluation" + (" (quick: 1 repeat)" if quick else "")
    bases = [clone / "models" / "base"] if clone else []
    bases.append(ROOT / "models" / "base")
    base = next((b for b in bases if (b / "config.json").is_file()), None)
    if base is None:
        return Row(what, "skipped: no models/base (run `dvc repro base`)", ">= 5x", "-")
    result, error, _ = run_script("eval_speed.py", ["--base", str(base), "--repeat", "1" if quick else "2"])
    if result is None:
        failures.append(error)
        return Row(what, "failed", ">= 5x", "-")
    figure = (f"{result['speedup']:.1f}x ({result['prompts'] / result['fast_s']:.0f} vs "
              f"{result['prompts'] / result['slow_s']:.1f} examples/s, {result['identical']:.0%} identical)")
    return Row(what, figure, ">= 5x", judged(result["speedup"], 5, False, None))


def print_table(rows: list[Row], quick: bool) -> None:
    print(f"\nmachine: {describe()}; mode: {'QUICK (scaled down, not the goals)' if quick else 'full size'}")
    headers = ("what", "figure", "goal", "met?")
    cells = [headers] + [(r.what, r.figure, r.goal, r.met) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for index, cell in enumerate(cells):
        print(" | ".join(text.ljust(width) for text, width in zip(cell, widths)).rstrip())
        if index == 0:
            print("-+-".join("-" * width for width in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down variants: a fast check, not the goals")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="run only these")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="stages at a time for the clean-clone pipeline (default: cores; 1: plain dvc repro)")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    failures: list[str] = []
    clone = None
    try:
        if "pipeline" in args.only:
            pipeline, clone = pipeline_rows(args.quick, args.jobs, failures)
            rows += pipeline
        if "transpile" in args.only:
            rows.append(transpile_row(args.quick, failures))
        if "report" in args.only:
            rows.append(report_row(args.quick, failures))
        if "eval" in args.only:
            rows.append(eval_row(args.quick, clone, failures))
    finally:
        if clone is not None and clone.parent.name.startswith("ldr-bench-"):
            shutil.rmtree(clone.parent, ignore_errors=True)

    print_table(rows, args.quick)
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    if failures:
        return 2
    return 1 if any(row.met.startswith("NO") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
