"""How well the report's significance tests keep their promises: type-I error, coverage and power, simulated.

    python benchmarks/stats_calibration.py                  # ~3 min on 2 cores: 250 draws per cell under each null
    python benchmarks/stats_calibration.py --reps 100 --jobs 1   # a quick look

Simulates (condition, cell) comparisons the way the report sees them, then runs on each the very functions
of ``stages/lib/stats.py`` that write ``significance.tsv``, in both of the report's modes. A cell has n
items, each with its own ability p_i ~ Beta(2.2, 1.8) (mean 0.55: some items nearly always right, some
nearly never); every run (the baseline's 2 templates, each seed × template of the condition) answers item i
right with probability q_i, its ability shifted so that the cell's mean moves by exactly the run's shift
(``q = p + Δ(1 − p)/(1 − p̄)`` up, ``q = p + Δp/p̄`` down: no clipping). A condition's run shift is the
planted effect plus, in the "seed noise" scenario, a training-seed shift ~ N(0, 2 pp) shared by that seed's
templates (the baseline has none), which with the run noise gives the ~3 pp seed sd of the study's SIB-200
5k cells. Scenarios: null with exchangeable runs (all runs draw from the same abilities: the null of
every test), null with seed noise (the null of the tests and intervals that count seed variance), and
planted effects of 1, 2 and 5 pp (exchangeable runs). Sizes: the paper's rows per cell (SIB-200 204,
XNLI 5,010, X-CSQA 1,000, Belebele 900) and the smoke pipeline's (12, 10, 14, 8); 3-seed and 1-seed
conditions.

Printed: per test, the share of p < 0.05 (type-I error under a null, power under an effect; NaN p
values, e.g. a seed t with one seed, are left out and counted), and per 95% interval the share that covers
the planted effect. Goals: type-I 0.04–0.06 (exact tests ≤ 0.05), coverage 93–97%. The last line,
``RESULT {json}``, is machine-readable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.lib import stats  # noqa: E402

PAPER = {"sib200": 204, "xnli": 5010, "csqa": 1000, "belebele": 900}
SMOKE = {"sib200": 12, "xnli": 10, "csqa": 14, "belebele": 8}
SCENARIOS = {"null": (0.0, 0.0), "null, seed noise": (0.0, 0.02), "+1 pp": (0.01, 0.0), "+2 pp": (0.02, 0.0),
             "+5 pp": (0.05, 0.0)}  # name -> (planted effect, training-seed sd)
TEMPLATES = 2
ALPHA = 0.05
RESAMPLES = 999  # per bootstrap and sign-flip test: any number keeps the sign-flip p exact in level
TESTS = ("signflip", "mcnemar_per_run", "seed_t", "z_observed_n",  # the calibrated set (default)
         "one_sample_t", "welch_original", "z_paper_n", "mcnemar_pooled")  # --original-statistics and the old report
INTERVALS = ("item_boot_ci", "seed_item_boot_ci")


def shifted(ability: np.ndarray, shift: float) -> np.ndarray:
    """Per-item probabilities whose mean is the abilities' mean plus ``shift``, each kept within [0, 1]."""
    mean = ability.mean()
    return ability + shift * ((1 - ability) / (1 - mean) if shift >= 0 else ability / mean)


def simulate(rng: np.random.Generator, n: int, seeds: int, effect: float, seed_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """One cell: the condition's seeds × templates × items and the baseline's templates × items correctness."""
    ability = rng.beta(2.2, 1.8, size=n)
    base = rng.random((TEMPLATES, n)) < ability
    shifts = effect + rng.normal(0, seed_sd, size=seeds) if seed_sd else np.full(seeds, effect)
    cond = np.stack([rng.random((TEMPLATES, n)) < shifted(ability, s) for s in shifts])
    return cond, base


def evaluate(cond: np.ndarray, base: np.ndarray, benchmark: str, seed: int) -> tuple[dict, dict]:
    """p per test and (low, high) per interval, from the functions that write significance.tsv."""
    seeds, n = cond.shape[0], cond.shape[2]
    cond_obs, base_obs = cond.mean(axis=2).ravel(), base.mean(axis=1)
    per_seed = cond.mean(axis=(1, 2))
    runs = cond.reshape(-1, n)
    p = {
        "signflip": stats.sign_flip_test(runs, base, seed=seed, n_resamples=RESAMPLES).p,
        "mcnemar_per_run": [stats.mcnemar_exact(r, base[i % TEMPLATES]).p for i, r in enumerate(runs)],
        "seed_t": stats.prediction_t(per_seed, float(base_obs.mean())).p,
        "z_observed_n": stats.prop_z(cond_obs, base_obs, n).p,
        "one_sample_t": stats.one_sample_t(per_seed, float(np.round(base_obs, 4).mean())).p,
        "welch_original": stats.welch_t(np.round(cond_obs, 4), np.round(base_obs, 4)).p,
        "z_paper_n": stats.prop_z(np.round(cond_obs, 4), np.round(base_obs, 4), stats.n_examples(benchmark, xnli_n_original=True)).p,
        "mcnemar_pooled": stats.mcnemar_exact(runs.ravel(), np.tile(base, (seeds, 1)).ravel()).p,
    }  # fmt: skip
    diffs = cond.mean(axis=1) - base.mean(axis=0)  # seeds × items
    item = stats.bootstrap_paired_mean(diffs.mean(axis=0), seed=seed, n_resamples=RESAMPLES)
    ci = {"item_boot_ci": (item.low, item.high)}
    if seeds > 1:
        both = stats.bootstrap_seed_item(diffs, seed=seed, n_resamples=RESAMPLES)
        ci["seed_item_boot_ci"] = (both.low, both.high)
    return p, ci


def run_cell(task: tuple) -> dict:
    """``reps`` simulated comparisons of one (sizes, benchmark, seeds, scenario): counts per test and interval."""
    sizes, benchmark, n, seeds, scenario, reps, seed = task
    effect, seed_sd = SCENARIOS[scenario]
    rng = np.random.default_rng(seed)
    out = {"sizes": sizes, "benchmark": benchmark, "n": n, "seeds": seeds, "scenario": scenario, "reps": reps,
           "reject": dict.fromkeys(TESTS, 0), "tested": dict.fromkeys(TESTS, 0), "covered": dict.fromkeys(INTERVALS, 0),
           "intervals": dict.fromkeys(INTERVALS, 0)}
    with np.errstate(all="ignore"):
        for rep in range(reps):
            p, ci = evaluate(*simulate(rng, n, seeds, effect, seed_sd), benchmark, seed=rep)
            for test, values in p.items():
                values = [v for v in np.atleast_1d(values) if not math.isnan(v)]
                out["reject"][test] += sum(v < ALPHA for v in values)
                out["tested"][test] += len(values)
            for name, (low, high) in ci.items():
                out["covered"][name] += low <= effect <= high
                out["intervals"][name] += 1
    return out


def tasks(reps: int, power_reps: int, sizes: dict[str, dict[str, int]]) -> list[tuple]:
    out = []
    for size_name, benchmarks in sizes.items():
        for b, (benchmark, n) in enumerate(benchmarks.items()):
            for seeds in (3, 1):
                for s, scenario in enumerate(SCENARIOS):
                    r = reps if scenario.startswith("null") else power_reps
                    out.append((size_name, benchmark, n, seeds, scenario, r, 1000 * b + 100 * s + seeds))
    return out


def summarise(cells: list[dict], by: tuple[str, ...]) -> dict[tuple, dict]:
    """Pooled counts over the cells that share the keys ``by``: rates per test and interval."""
    groups: dict[tuple, dict] = {}
    for cell in cells:
        key = tuple(cell[k] for k in by)
        g = groups.setdefault(key, {"reject": dict.fromkeys(TESTS, 0), "tested": dict.fromkeys(TESTS, 0),
                                    "covered": dict.fromkeys(INTERVALS, 0), "intervals": dict.fromkeys(INTERVALS, 0)})
        for part in g:
            for name in g[part]:
                g[part][name] += cell[part][name]
    return {key: {**{t: g["reject"][t] / g["tested"][t] if g["tested"][t] else math.nan for t in TESTS},
                  **{i: g["covered"][i] / g["intervals"][i] if g["intervals"][i] else math.nan for i in INTERVALS}}
            for key, g in groups.items()}


def table(cells: list[dict], by: tuple[str, ...] = ("sizes", "seeds")) -> str:
    """Markdown: a row per test or interval and grouping, a column per scenario."""
    rates = summarise(cells, (*by, "scenario"))
    groups = sorted({k[:-1] for k in rates}, key=lambda k: tuple(-v if isinstance(v, int) else v for v in k))
    head = ["test / interval", *by, *SCENARIOS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in (*TESTS, *INTERVALS):
        for group in groups:
            values = [rates.get((*group, s), {}).get(name, math.nan) for s in SCENARIOS]
            if all(math.isnan(v) for v in values):
                continue
            shown = ["–" if math.isnan(v) else f"{v:.3f}" for v in values]
            lines.append("| " + " | ".join([name, *map(str, group), *shown]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=250, help="simulated comparisons per cell under each null (default 250)")
    parser.add_argument("--power-reps", type=int, default=80, help="simulated comparisons per cell under each effect")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--by-benchmark", action="store_true", help="also print a row per benchmark")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    work = tasks(args.reps, args.power_reps, {"paper": PAPER, "smoke": SMOKE})
    work.sort(key=lambda t: -t[2] * t[5])  # the largest first, so the pool ends together
    with ProcessPoolExecutor(args.jobs) as pool:
        cells = list(pool.map(run_cell, work))
    seconds = time.perf_counter() - started
    print(f"stats calibration: {len(cells)} cells, {sum(c['reps'] for c in cells)} simulated comparisons, "
          f"{seconds:.1f} s on {args.jobs} of {os.cpu_count()} cores")
    print("Rates of p < 0.05 (type-I error under a null, power under an effect) and 95% interval coverage of the "
          "planted effect; pooled over the four benchmarks of each size set:\n")
    print(table(cells))
    if args.by_benchmark:
        print()
        print(table(cells, ("sizes", "benchmark", "seeds")))
    rates = summarise(cells, ("sizes", "seeds", "scenario"))
    print("RESULT " + json.dumps({"seconds": round(seconds, 1), "rates": {" | ".join(map(str, k)): {
        t: (None if math.isnan(v) else round(v, 4)) for t, v in r.items()} for k, r in sorted(rates.items())}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
