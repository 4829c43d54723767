"""Examples/s of batched generation against one prompt at a time, on the same prompts.

    python benchmarks/eval_speed.py                      # the smoke base in models/base, CPU
    python benchmarks/eval_speed.py --base DIR --batch-size 32 --repeat 2
    python benchmarks/eval_speed.py --backend vllm       # GPU: vLLM against HF generate at batch 32
    python benchmarks/eval_speed.py --session condition-1-en-5k-seed42   # one generate per cell vs per block

The prompts are every evaluation item of the fixtures (all four Phase 3 benchmarks, all four
data languages) under template1 with English instructions, as evaluate renders them. Both
sides run the evaluate stage's own backend code (stages/evaluate.py), greedy, 10 new tokens.
Prints examples/s for each side, the speed-up, and the share of rows whose outputs agree
(the issue's goals: batched >= 5x one-at-a-time on the smoke model; vLLM >= 10x HF at batch
32 with >= 99% identical greedy outputs). The last line, ``RESULT {json}``, is for
``benchmarks/run_all.py``.

``--session S`` scores session S's whole grid (its adapter loaded, generation and log-likelihood, as
the evaluate stage does) twice: one ``generate`` per cell and one per block of cells
(stages/lib/evaluation/blocks.py, the stage since issue 18), both with today's backend (batches by
token count, tokenising once); it prints seconds, CPU seconds, the model's forward passes and
examples/s of each, and the share of rows whose raw outputs agree. Measured 2026-12-07 on the
shared, loaded 2-core machine (wall figures swing 1.5x between runs; CPU seconds steadier):
condition-1-en-5k-seed42, 1,408 examples, per cell 767 forwards 11.6/19.2 s (9.1/11.7 s CPU), per
block 384 forwards 12.7/12.0 s (9.2/8.8 s CPU), 100% identical raw outputs. Half the forwards, but a
32-row batch runs until its slowest row stops (8.3 steps a batch against 6.0 for an 11-row cell),
so at smoke scale the saving is small; the whole stage, main's code against this one, interleaved,
CPU seconds of the process: baseline 26.1/24.5 -> 22.8/19.1, a 5k adapter 30.9/26.8 -> 27.2/26.5,
a 20k adapter 32.2/35.0 -> 31.0/29.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stages import evaluate as ev  # noqa: E402
from stages.lib.tasks import load_benchmark, load_examples  # noqa: E402
from stages.lib.params import load_params  # noqa: E402


def prompts(params, fixtures: Path) -> list[str]:
    out = []
    for name in ("xnli", "csqa", "sib200", "belebele"):
        benchmark = load_benchmark(name)
        for lang in ("en", "zh", "es", "ur"):
            for example in load_examples(benchmark, lang, fixtures_dir=fixtures):
                out.append(benchmark.render("phase3", "template1", "en", example.fields))
    return out


def timed(fn, repeat: int) -> tuple[float, list[str]]:
    best, outputs = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        outputs = fn()
        best = min(best, time.perf_counter() - start)
    return best, outputs


def session_cells(params, session_id: str, base: Path, models: Path, repeat: int) -> int:
    """One generate per cell against one per block over a session's grid; see the module docstring."""
    from stages.lib.evaluation.blocks import blocks

    e = params.evaluate
    session = ev.session_of(params, session_id)
    grid = ev.jobs(session, e)
    benchmarks = {name: ev.find_benchmark(name, e.tasks_dirs) for name in e.benchmarks}
    examples = {(name, lang): load_examples(benchmarks[name], lang, fixtures_dir=Path(e.fixtures_dir), split="eval",
                                            n_samples=e.n_samples) for name in e.benchmarks for lang in e.data_langs}
    backend = ev.load_backend(params, session, base, models)
    core = backend.model.get_base_model() if hasattr(backend.model, "get_base_model") else backend.model
    forwards = [0]
    core.register_forward_pre_hook(lambda module, args: forwards.__setitem__(0, forwards[0] + 1))
    packed = blocks(grid, {j.key: len(examples[(j.benchmark, j.data_lang)]) for j in grid},
                    {j.key: ev.new_tokens(benchmarks[j.benchmark], e) for j in grid}, e.batch_size)
    sides = {
        "per cell": lambda: [ev.score_cell(backend, benchmarks[j.benchmark], j, examples[(j.benchmark, j.data_lang)], e)
                             for j in grid],
        "per block": lambda: [s for block in packed for _, s in ev.score_block(backend, benchmarks, block, examples, e)],
    }
    n = sum(len(examples[(j.benchmark, j.data_lang)]) for j in grid)
    best, rows = {}, {}
    print(f"session {session_id}: {len(grid)} cells in {len(packed)} blocks, {n} examples, cores {os.cpu_count()}")
    print(f"{'side':<12}{'run':>5}{'seconds':>10}{'cpu s':>8}{'forwards':>10}{'examples/s':>12}")
    for run in range(repeat):
        for side, score in sides.items():
            forwards[0] = 0
            wall, cpu = time.perf_counter(), time.process_time()
            scored = score()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[side] = min(best.get(side, float("inf")), wall)
            rows[side] = [row["raw_output"] for cell in scored for row in cell["rows"]]
            print(f"{side:<12}{run + 1:>5}{wall:>10.2f}{cpu:>8.2f}{forwards[0]:>10}{n / wall:>12.1f}")
    agree = sum(a == b for a, b in zip(rows["per cell"], rows["per block"])) / n
    print(f"speed-up: {best['per cell'] / best['per block']:.2f}x; identical raw outputs: {agree:.1%} of rows")
    print("RESULT " + json.dumps({"prompts": n, "slow": "per cell", "fast": "per block", "slow_s": best["per cell"],
                                  "fast_s": best["per block"], "speedup": best["per cell"] / best["per block"],
                                  "identical": agree, "repeat": repeat, "cores": os.cpu_count()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the fastest counts")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: batched vs one at a time; vllm: vLLM vs HF generate at --batch-size")
    parser.add_argument("--max-new-tokens", type=int, default=10)
    parser.add_argument("--session", help="score this session's grid one generate per cell vs per block")
    parser.add_argument("--models", type=Path, default=Path("models"), help="where --session's adapter is")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    if args.session:
        return session_cells(params, args.session, args.base, args.models, args.repeat)
    params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"batch_size": args.batch_size})})
    texts = prompts(params, Path(params.evaluate.fixtures_dir))
    session = ev.session_of(params, "baseline")
    hf = ev.load_backend(params, session, args.base, Path("models"))
    n = len(texts)
    fast_time, fast = timed(lambda: hf.generate(texts, args.max_new_tokens), args.repeat)
    if args.backend == "hf":
        slow_label, fast_label = "one at a time", f"batched ({args.batch_size})"
        slow_time, slow = timed(lambda: [hf.generate([t], args.max_new_tokens)[0] for t in texts], args.repeat)
    else:
        params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"backend": "vllm"})})
        vllm = ev.load_backend(params, session, args.base, Path("models"))
        slow_label, fast_label = f"HF generate ({args.batch_size})", "vLLM"
        slow_time, slow = fast_time, fast
        fast_time, fast = timed(lambda: vllm.generate(texts, args.max_new_tokens), args.repeat)
    agree = sum(a == b for a, b in zip(fast, slow)) / n
    print(f"prompts: {n}, max_new_tokens {args.max_new_tokens}, cores {os.cpu_count()}, base {args.base}")
    print(f"{'side':<24}{'seconds':>10}{'examples/s':>14}")
    print(f"{slow_label:<24}{slow_time:>10.2f}{n / slow_time:>14.1f}")
    print(f"{fast_label:<24}{fast_time:>10.2f}{n / fast_time:>14.1f}")
    print(f"speed-up: {slow_time / fast_time:.1f}x; identical outputs: {agree:.1%} of rows")
    print("RESULT " + json.dumps({"prompts": n, "slow": slow_label, "fast": fast_label, "slow_s": slow_time,
                                  "fast_s": fast_time, "speedup": slow_time / fast_time, "identical": agree,
                                  "repeat": args.repeat, "cores": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
