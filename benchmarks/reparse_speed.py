"""How long reparsing the published corpus takes: 42 results files, about 52 MB each, 1,664 cells.

    python benchmarks/reparse_speed.py                  # full size (~2.2 GB written to a temp folder)
    python benchmarks/reparse_speed.py --scale 0.05     # 5% of the rows per cell, same files and cells
    python benchmarks/reparse_speed.py --jobs 2 --dir /tmp/rp --keep
    python benchmarks/reparse_speed.py --original ../shared/reference/original-analysis/scripts   # the ratio

With ``--original`` it times the original ``reparse_results.py --write-reparsed-summary`` and
``python -m stages.reparse --jobs 2`` back to back, each as a fresh process (best of ``--repeat``), on
four published-size files (the four-language sessions, about 58 MB each at the default ``--scale
0.69``), checks that every cell's count, correct, accuracy, failure rate and delta entry is the
same in both outputs, and prints the ratio (the goal, issue 19: at least 5x on 2 cores).

Writes synthetic ``{condition}_seed{N}_results_{template}.json`` files in the published schema
(the 21 sessions x 2 templates, cells in the evaluation loop
order, the real row counts per cell, rows with text fields, raw_output, pred, gold, correct), then
times ``stages.reparse.reparse_files`` over all of them and prints one table row: files, MB, cells,
rows, seconds, cores. Only the reparse is timed, not writing the inputs. The goal is reparse +
report within 60 s on 2 cores. The raw outputs mix the surface forms the extractors meet (labels,
native words, hedges, CJK-glued answers, empty ones) with a share of unique continuations, so the
extractors' memo does not make the run look cheaper than real outputs would.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.lib.extractors import get_extractor  # noqa: E402
from stages.reparse import reparse_files  # noqa: E402

ROWS_PER_CELL = {"xnli": 5010, "csqa": 1000, "sib200": 204, "belebele": 900}
BENCHMARK_ORDER = ("xnli", "csqa", "sib200", "belebele")
DATA_LANGS = ("en", "zh", "es", "ur")
UNIQUE_SHARE = 0.15  # rows whose raw output occurs once in the whole corpus

# the text fields each benchmark's rows carry, with their length in characters; tuned so that a
# full-size corpus averages about 52 MB a file, as the published one does
TEXT_FIELDS = {
    "xnli": (("premise", 155), ("hypothesis", 72)),
    "csqa": (("stem", 92),),
    "sib200": (("text", 185),),
    "belebele": (("passage", 800), ("question", 88)),
}
ALPHABETS = {
    "en": "abcdefghijklmnopqrstuvwxyz     ",
    "es": "abcdefghijklmnñopqrstuvwxyzáéíóú     ",
    "zh": "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你",
    "ur": "ابپتٹثجچحخدڈذرڑزژسشصضطظعغفقکگلمنوہھءیے     ",
}
RAW_OUTPUTS = {
    "xnli": ("entailment", "Contradiction", "neutral", "蕴含", "矛盾", "答案是entailment", "两句话没有任何关系",
             "contradicción", "تردید", "The hypothesis is", "", "Entailment, contradiction", "neutrality"),
    "csqa": ("A", "B.", "C", "D", "E", "A vague answer", "答案是B", "答案：C", "ANSWERD", "The answer is", ""),
    "sib200": ("science/technology", "travel", "politics", "sports and health", "science/health", "سیاست",
               "سیاست/تکنالوجی", "科学和技术", "viajes", "答案是travel", "entertainment", "geography", "تعلیم", ""),
    "belebele": ("A", "B", "C", "D", "答案是B", "Answer: D", "The passage says", ""),
}
GOLDS = {
    "xnli": ("entailment", "neutral", "contradiction"),
    "csqa": tuple("ABCDE"),
    "sib200": ("science/technology",) * 51 + ("travel",) * 40 + ("politics",) * 30 + ("sports",) * 25
    + ("health",) * 22 + ("entertainment",) * 19 + ("geography",) * 17,
    "belebele": tuple("ABCD"),
}


def sessions() -> list[tuple[str, str, tuple[str, ...]]]:
    """(condition, seed, instruction languages) of the 21 published sessions."""
    grid = [("baseline", "none", DATA_LANGS)]
    grid += [("condition-1-en-5k", seed, DATA_LANGS) for seed in ("42", "123", "456")]
    grid += [("condition-1-en-20k", "42", DATA_LANGS)]
    for lang in ("zh", "es", "ur"):
        grid += [(f"condition-2-{lang}-5k", seed, ("en", lang)) for seed in ("42", "123", "456")]
        grid += [(f"condition-2-{lang}-20k", "42", ("en", lang))]
    grid += [("condition-3-zh-5k", "42", ("en", "zh"))]
    grid += [(f"condition-5-{lang}-5k-c4ai-aya-expanse-32b", "42", ("en", lang)) for lang in ("zh", "es", "ur")]
    return grid


def _text(rng: random.Random, lang: str, length: int) -> str:
    return "".join(rng.choices(ALPHABETS[lang], k=length))


def _field(key: str, value: object, indent: str = "      ") -> str:
    return f"{indent}{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"


def _cell_rows(rng: random.Random, benchmark: str, template: str, data: str, instr: str, n: int) -> tuple[list[str], int, int]:
    """One cell's rows as JSON text (json.dump's indent=2 layout) and its strict (correct, failures)."""
    strict = get_extractor("strict", benchmark)
    texts = [[json.dumps(_text(rng, data, length), ensure_ascii=False) for _ in range(32)] for _, length in TEXT_FIELDS[benchmark]]
    head = f'      "template": "{template}",\n      "instruction_lang": "{instr}",\n'
    rows, correct, failures = [], 0, 0
    for index in range(n):
        raw = rng.choice(RAW_OUTPUTS[benchmark])
        if rng.random() < UNIQUE_SHARE:
            raw = f"{raw} {rng.getrandbits(40):x}"
        gold = GOLDS[benchmark][index % len(GOLDS[benchmark])]
        pred = strict(raw)
        failures += pred is None
        correct += pred == gold
        fields = [f"      \"{name}\": {rng.choice(pool)}" for (name, _), pool in zip(TEXT_FIELDS[benchmark], texts)]
        tail = [_field("raw_output", raw), _field("pred", pred), _field("gold", gold), _field("correct", pred == gold)]
        rows.append("    {\n" + ",\n".join(fields) + ",\n" + head + ",\n".join(tail) + "\n    }")
    return rows, correct, failures


def write_results_file(path: Path, template: str, instr_langs: tuple[str, ...], scale: float, seed: int) -> int:
    """One synthetic ``_results_`` file; returns its size in bytes."""
    rng = random.Random(seed)
    summary, fail_rates, cells = [], [], []
    for data in DATA_LANGS:
        for instr in instr_langs:
            for benchmark in BENCHMARK_ORDER:
                key = f"{template}_{benchmark}_data={data}_instr={instr}"
                n = max(1, round(ROWS_PER_CELL[benchmark] * scale))
                rows, correct, failures = _cell_rows(rng, benchmark, template, data, instr, n)
                summary.append(_field(f"{key}_acc", correct / n, "    "))
                fail_rates.append(_field(key, failures / n, "    "))
                cells.append(f'  "{key}": [\n' + ",\n".join(rows) + "\n  ]")
    text = (
        '{\n  "summary": {\n' + ",\n".join(summary) + '\n  },\n  "parse_failure_rates": {\n'
        + ",\n".join(fail_rates) + "\n  },\n" + ",\n".join(cells) + "\n}"
    )
    path.write_text(text, encoding="utf-8")
    return path.stat().st_size


def write_corpus(folder: Path, scale: float, jobs: int, published_layout: bool = False) -> list[Path]:
    """The 42 results files, flat in ``folder`` or in the published phase3/conditions/... layout."""
    tasks = []
    for number, (condition, seed, instr_langs) in enumerate(sessions()):
        where = folder / "phase3" / "conditions" / condition / f"seed{seed}" if published_layout else folder
        where.mkdir(parents=True, exist_ok=True)
        for template in ("template1", "template2"):
            path = where / f"{condition}_seed{seed}_results_{template}.json"
            tasks.append((path, template, instr_langs, scale, number * 2 + int(template[-1])))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(write_results_file, *zip(*tasks)))
    return [task[0] for task in tasks]


COMPARE_FILES = 4
COMPARE_SCALE = 0.69  # a four-language session's file is then about 58 MB, as the published ones


def compare_corpus(folder: Path, scale: float) -> list[Path]:
    """The first two four-language sessions' files (``COMPARE_FILES`` of them), flat in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (condition, seed, instr_langs) in enumerate(s for s in sessions() if len(s[2]) == len(DATA_LANGS)):
        for template in ("template1", "template2"):
            path = folder / f"{condition}_seed{seed}_results_{template}.json"
            write_results_file(path, template, instr_langs, scale, number * 2 + int(template[-1]))
            paths.append(path)
            if len(paths) == COMPARE_FILES:
                return paths
    return paths


def _timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its workers) of one fresh Python process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"reparse_speed: {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cell_numbers(body: dict) -> dict:
    """Every per-cell number of a ``_summary_reparsed_`` body (the metadata's provenance and time left out)."""
    meta = body["reparse_metadata"]
    return {"summary": body["summary"], "parse_failure_rates": body["parse_failure_rates"],
            "cells_changed": meta["cells_changed"], "delta_per_cell": meta["delta_per_cell"]}


def compare_with_original(original: Path, folder: Path, scale: float, jobs: int, repeat: int) -> int:
    """Time the original and the project back to back on the same files; print the ratio; 1 if numbers differ."""
    script = original / "reparse_results.py" if original.is_dir() else original
    if not script.is_file():
        raise SystemExit(f"reparse_speed: {script}: no reparse_results.py there")
    theirs, ours = folder / "original", folder / "project"
    paths = compare_corpus(theirs, scale)
    ours.mkdir(parents=True, exist_ok=True)
    megabytes = [p.stat().st_size / 1e6 for p in paths]
    root = Path(__file__).resolve().parents[1]
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root) + (os.pathsep + env_path if env_path else "")
    original_s, project_s = [], []
    load = os.getloadavg()
    for _ in range(repeat):  # interleaved, so a busy moment of the machine hits both
        original_s.append(_timed([str(script), *map(str, paths), "--write-reparsed-summary"], theirs))
        project_s.append(_timed(["-m", "stages.reparse", "--no-repo-head", "--jobs", str(jobs), "--out-dir", str(ours),
                                 *map(str, paths)], root))
    differing = []
    for path in paths:
        name = path.name.replace("_results_", "_summary_reparsed_")
        a = cell_numbers(json.loads((theirs / name).read_text(encoding="utf-8")))
        b = cell_numbers(json.loads((ours / name).read_text(encoding="utf-8")))
        if a != b:
            differing.append(name)
    cells = sum(len(json.loads((ours / p.name.replace("_results_", "_summary_reparsed_")).read_text())["summary"]) // 3
                for p in paths)
    (best_original, original_cpu), (best_project, project_cpu) = min(original_s), min(project_s)
    print(f"{len(paths)} files of {min(megabytes):.0f}-{max(megabytes):.0f} MB, {cells} cells, best of {repeat} "
          f"(wall s; CPU s of all processes in brackets; os.getloadavg() before: {load[0]:.1f})")
    print(f"original reparse_results.py (1 process): {best_original:.2f} s  [{original_cpu:.2f}]")
    print(f"python -m stages.reparse (--jobs {jobs}):  {best_project:.2f} s  [{project_cpu:.2f}]")
    print(f"ratio: {best_original / best_project:.1f}x faster (CPU {original_cpu / project_cpu:.1f}x); per-cell numbers "
          + ("identical" if not differing else f"DIFFER in {', '.join(differing)}"))
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=None,
                        help=f"fraction of the published rows per cell (default 1; {COMPARE_SCALE} with --original)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="reparse processes (default: all cores)")
    parser.add_argument("--dir", type=Path, help="where to write the synthetic corpus (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus afterwards")
    parser.add_argument("--original", type=Path, help="reparse_results.py, or its folder: time it against the project")
    parser.add_argument("--repeat", type=int, default=3, help="with --original: runs of each, the best counts")
    args = parser.parse_args(argv)

    folder = args.dir or Path(tempfile.mkdtemp(prefix="reparse-speed-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if args.original is not None:
            scale = COMPARE_SCALE if args.scale is None else args.scale
            return compare_with_original(args.original.resolve(), folder, scale, args.jobs, max(1, args.repeat))
        args.scale = 1.0 if args.scale is None else args.scale
        started = time.perf_counter()
        paths = write_corpus(folder, args.scale, args.jobs)
        written = time.perf_counter() - started
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        cells = sum(4 * len(DATA_LANGS) * len(instr) for _, _, instr in sessions()) * 2
        rows = sum(max(1, round(ROWS_PER_CELL[b] * args.scale)) for b in BENCHMARK_ORDER) * cells // 4

        started = time.perf_counter()
        failed = reparse_files(paths, jobs=args.jobs, out=io.StringIO())
        seconds = time.perf_counter() - started

        print(f"synthetic corpus written in {written:.1f} s to {folder} (scale {args.scale:g})")
        print(f"{'files':>5} {'MB':>8} {'cells':>5} {'rows':>9} {'seconds':>8} {'cores':>5} {'MB/s':>6}")
        print(f"{len(paths):>5} {megabytes:>8.1f} {cells:>5} {rows:>9} {seconds:>8.1f} {args.jobs:>5} {megabytes / seconds:>6.1f}")
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
