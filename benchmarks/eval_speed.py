"""Examples/s of batched generation against one prompt at a time, on the same prompts.

    python benchmarks/eval_speed.py                      # the smoke base in models/base, CPU
    python benchmarks/eval_speed.py --base DIR --batch-size 32 --repeat 2
    python benchmarks/eval_speed.py --backend vllm       # GPU: vLLM against HF generate at batch 32

The prompts are every evaluation item of the fixtures (all four Phase 3 benchmarks, all four
data languages) under template1 with English instructions, as evaluate renders them. Both
sides run the evaluate stage's own backend code (stages/evaluate.py), greedy, 10 new tokens.
Prints examples/s for each side, the speed-up, and the share of rows whose outputs agree
(the issue's goals: batched >= 5x one-at-a-time on the smoke model; vLLM >= 10x HF at batch
32 with >= 99% identical greedy outputs). The last line, ``RESULT {json}``, is for
``benchmarks/run_all.py``.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the fastest counts")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: batched vs one at a time; vllm: vLLM vs HF generate at --batch-size")
    parser.add_argument("--max-new-tokens", type=int, default=10)
    args = parser.parse_args(argv)

    params = load_params(args.params)
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
