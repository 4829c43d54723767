"""The report's figures: pure functions from the report's tidy tables to PNG, PDF and SVG files.

Every figure compares like with like: a condition's deltas are split by prompt language (English prompt:
``instr_lang == en``; native prompt: ``instr_lang == data_lang != en``), because English-trained conditions were
prompted in four languages and the others in two, so an average over all prompts mixes unlike sets. Single-seed
conditions are drawn hollow and labelled ``(1 seed)``. The bytes depend on the data only: no dates, no version
strings (PNG ``Software``, PDF ``CreationDate``/``Producer``/``Creator``, SVG ``Date``/``Creator``) and a fixed
``svg.hashsalt``. Each figure's data is also written as a small TSV, which ``dvc plots`` can diff.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import phase2_results
from stages.lib.paper_order import sort_rows
from stages.lib.paper_tables import BENCH_TITLE
# the grid's languages: the study's resource-tier descending, as the original's figures, then any others by name;
# conditions in the paper's order (condition_sort)
from stages.lib.results_index import BASELINE, PUBLISHED, Grid, condition_sort, display_name

# Okabe-Ito, colour-blind safe; a language or benchmark beyond the study's takes the next of EXTRA_COLOURS
LANG_COLOUR = {"en": "#000000", "es": "#E69F00", "zh": "#0072B2", "ur": "#009E73"}
BENCH_COLOUR = {"sib200": "#D55E00", "xnli": "#0072B2", "csqa": "#009E73", "belebele": "#E69F00"}
EXTRA_COLOURS = ("#CC79A7", "#56B4E9", "#F0E442", "#999999")
TRANSITION_COLOUR = {"win→loss": "#D55E00", "loss→win": "#0072B2", "stable negative": "#D55E00",
                     "deflated": "#E69F00", "stable positive": "#009E73", "near zero": "#999999"}
PROMPTS = ("English prompt", "native prompt")
FORMATS = ("png", "pdf", "svg")
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
            "svg": {"Date": None, "Creator": None}}
NEAR_ZERO_PP = 1.0  # the ±0.01 floor of the report's sign-flip rule, in pp


def colours(known: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """``known``'s colours for its names, the next of :data:`EXTRA_COLOURS` (in turn) for each other name."""
    extra = [n for n in names if n not in known]
    return {**known, **{n: EXTRA_COLOURS[k % len(EXTRA_COLOURS)] for k, n in enumerate(extra)}}


def prompt_of(data_lang: pd.Series, instr_lang: pd.Series) -> pd.Series:
    """English prompt, native prompt (instruction in the data's own non-English language), or cross-lingual."""
    return pd.Series(np.where(instr_lang == "en", PROMPTS[0],
                              np.where(instr_lang == data_lang, PROMPTS[1], "cross-lingual prompt")),
                     index=data_lang.index)


def seed_counts(vs: pd.DataFrame) -> dict[str, int]:
    return vs.groupby("condition")["seed"].nunique().to_dict()


def label(condition: str, seeds: dict[str, int]) -> str:
    short = condition.replace("condition-", "c").replace("-c4ai-aya-expanse-32b", "-aya")
    return f"{short} (1 seed)" if seeds.get(condition, 0) == 1 else short


# --- tidy tables (the figures' data, and dvc plots' input) ----------------------------------------------


def seed_spread(vs: pd.DataFrame, delta: str = "delta_rep") -> pd.DataFrame:
    """Δ vs baseline (pp) per condition, seed, benchmark, prompt and data language, mean over templates; ``delta``
    is the refined one, or the strict one where a phase has no refined scoring (Phase 2)."""
    frame = vs[["condition", "seed", "benchmark", "data_lang", "instr_lang", delta]].rename(columns={delta: "delta_rep"})
    frame["prompt"] = prompt_of(frame["data_lang"], frame["instr_lang"])
    frame = frame[frame["prompt"] != "cross-lingual prompt"]
    out = (frame.groupby(["condition", "benchmark", "prompt", "data_lang", "seed"], as_index=False)["delta_rep"]
           .mean())
    out["delta_pp"] = (out.pop("delta_rep") * 100).round(4)
    seeds = seed_counts(vs)
    out["n_seeds"] = out["condition"].map(seeds)
    out["seed"] = out["seed"].astype(str)
    out["scoring"] = "refined" if delta == "delta_rep" else "strict"
    return sort_rows(out, ["condition", "benchmark", "prompt", "data_lang", "seed"])[
        ["condition", "n_seeds", "seed", "benchmark", "prompt", "data_lang", "scoring", "delta_pp"]]


def strict_vs_refined(runs: pd.DataFrame) -> pd.DataFrame:
    """Strict and refined accuracy (%) per run cell, with its prompt language."""
    out = runs.reindex(columns=["condition", "seed", "template", "benchmark", "data_lang", "instr_lang", "acc_strict",
                                "acc_refined"])  # Phase 2 has no refined scoring: an empty column
    out["prompt"] = prompt_of(out["data_lang"], out["instr_lang"])
    for column in ("acc_strict", "acc_refined"):
        out[column] = (out[column] * 100).round(4)
    out["seed"] = out["seed"].astype(str)
    out["template"] = out["template"].astype(str)
    return out.sort_values(["condition", "seed", "template", "benchmark", "data_lang", "instr_lang"],
                           key=lambda s: s.map(condition_sort) if s.name == "condition" else s).reset_index(drop=True)


def transition(orig_pp: float, rep_pp: float) -> str:
    """How a delta moved from the strict to the refined extractor (the original's Figure 1 colours)."""
    if max(abs(orig_pp), abs(rep_pp)) < NEAR_ZERO_PP:
        return "near zero"
    if orig_pp > 0 > rep_pp:
        return "win→loss"
    if orig_pp < 0 < rep_pp:
        return "loss→win"
    if rep_pp < 0:
        return "stable negative"
    return "deflated" if rep_pp < orig_pp else "stable positive"


def extractor_slopes(vs: pd.DataFrame) -> pd.DataFrame:
    """Mean Δ vs baseline (pp) per condition × instruction language × benchmark, strict and refined."""
    out = vs.groupby(["benchmark", "condition", "instr_lang"], as_index=False)[["delta_orig", "delta_rep"]].mean()
    out["strict_pp"] = (out.pop("delta_orig") * 100).round(4)
    out["refined_pp"] = (out.pop("delta_rep") * 100).round(4)
    out["transition"] = [transition(a, b) for a, b in zip(out["strict_pp"], out["refined_pp"])]
    return out


# --- drawing ---------------------------------------------------------------------------------------------


def at_least_one_pp(ax, *, x: bool = False) -> None:
    """Keep a ±1 pp range so that a flat panel reads as 'no difference', not as float noise magnified."""
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, -1.0), max(high, 1.0))
    if x:
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, -1.0), max(high, 1.0))


def save(fig, folder: Path, name: str) -> list[str]:
    written = []
    for fmt in FORMATS:
        fig.savefig(folder / f"{name}.{fmt}", dpi=300 if fmt == "png" else None, metadata=METADATA[fmt])
        written.append(f"{name}.{fmt}")
    return written


def draw_deltas(plt, spread: pd.DataFrame, sig: pd.DataFrame, seeds: dict[str, int], grid: Grid = PUBLISHED):
    """Per cell: the point estimate with its interval (seed × item bootstrap, item bootstrap for one seed), and
    each seed's delta as a small dot; rows are the prompt language, columns the benchmarks."""
    conditions = sorted(spread["condition"].unique(), key=condition_sort)
    sig = sig.copy()
    sig["prompt"] = prompt_of(sig["data"], sig["instr"])
    fig, axes = plt.subplots(len(PROMPTS), len(grid.benchmarks), figsize=(12, 7), sharex=True, squeeze=False)
    offset = {lang: (k - (len(grid.langs) - 1) / 2) * 0.18 for k, lang in enumerate(grid.langs)}
    lang_colour = colours(LANG_COLOUR, grid.langs)
    for row, prompt in enumerate(PROMPTS):
        for col, bench in enumerate(grid.benchmarks):
            ax = axes[row][col]
            cells = sig[(sig["benchmark"] == bench) & (sig["prompt"] == prompt)]
            dots = spread[(spread["benchmark"] == bench) & (spread["prompt"] == prompt)]
            for x, condition in enumerate(conditions):
                one = seeds.get(condition, 0) == 1
                for lang in grid.langs:
                    cell = cells[(cells["condition"] == condition) & (cells["data"] == lang)]
                    if cell.empty:
                        continue
                    cell = cell.iloc[0]
                    low, high = cell["seed_item_boot_ci_low_pp"], cell["seed_item_boot_ci_high_pp"]
                    if pd.isna(low):
                        low, high = cell["item_boot_ci_low_pp"], cell["item_boot_ci_high_pp"]
                    low, high, point = (round(float(v), 4) for v in (low, high, cell["delta_pp"]))
                    at = x + offset[lang]
                    colour = lang_colour[lang]
                    if not np.isnan(low):
                        ax.vlines(at, low, high, color=colour, linewidth=1, linestyles="dashed" if one else "solid")
                    ax.scatter([at], [point], s=18, marker="o", facecolors="white" if one else colour,
                               edgecolors=colour, linewidths=0.8, zorder=3)
                    per_seed = dots[(dots["condition"] == condition) & (dots["data_lang"] == lang)]["delta_pp"]
                    ax.scatter([at + 0.06] * len(per_seed), per_seed, s=3, color="grey", zorder=2)
            ax.axhline(0, color="grey", linewidth=0.5, linestyle="dashed")
            at_least_one_pp(ax)
            if row == 0:
                ax.set_title(grid.title(bench))
            if col == 0:
                ax.set_ylabel(f"{prompt}\nrefined Δ vs baseline (pp)")
            ax.set_xticks(range(len(conditions)), [label(c, seeds) for c in conditions], rotation=90)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=lang_colour[l], label=f"data {l}")
               for l in grid.langs]
    handles += [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="white", color="black",
                           label="one seed: item-bootstrap interval"),
                plt.Line2D([], [], marker=".", linestyle="", color="grey", label="per seed")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def draw_strict_vs_refined(plt, table: pd.DataFrame, grid: Grid = PUBLISHED):
    kinds = (*PROMPTS, "cross-lingual prompt")
    bench_colour = colours(BENCH_COLOUR, grid.benchmarks)
    fig, axes = plt.subplots(1, len(kinds), figsize=(12, 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        part = table[table["prompt"] == kind]
        for bench in grid.benchmarks:
            rows = part[part["benchmark"] == bench]
            ax.scatter(rows["acc_strict"], rows["acc_refined"], s=6, alpha=0.7, color=bench_colour[bench],
                       label=grid.title(bench))
        ax.plot([0, 100], [0, 100], color="grey", linewidth=0.5)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_title(f"{kind} ({len(part)} run cells)")
        ax.set_xlabel("strict accuracy (%)")
    axes[0][0].set_ylabel("refined accuracy (%)")
    axes[0][0].legend(loc="upper left")
    fig.tight_layout()
    return fig


def draw_extractor_slopegraph(plt, slopes: pd.DataFrame, grid: Grid = PUBLISHED):
    """The original's Figure 1: strict (left) → refined (right) mean Δ per condition × instruction language."""
    fig, axes = plt.subplots(1, len(grid.benchmarks), figsize=(12, 4), squeeze=False)
    for ax, bench in zip(axes[0], grid.benchmarks):
        part = slopes[slopes["benchmark"] == bench]
        for _, line in part.iterrows():
            flip = line["transition"] in ("win→loss", "loss→win")
            ax.plot([0, 1], [line["strict_pp"], line["refined_pp"]], marker="o", markersize=2,
                    color=TRANSITION_COLOUR[line["transition"]], linewidth=1.6 if flip else 0.7,
                    alpha=1.0 if flip else 0.6)
        ax.axhline(0, color="grey", linewidth=0.5, linestyle="dashed")
        ax.set_xticks([0, 1], ["strict", "refined"])
        ax.set_xlim(-0.2, 1.2)
        at_least_one_pp(ax)
        flips = part["transition"].isin(["win→loss", "loss→win"]).sum()
        ax.set_title(f"{grid.title(bench)}: {len(part)} lines, {flips} sign flips")
    axes[0][0].set_ylabel("mean Δ vs baseline (pp), condition × instr")
    handles = [plt.Line2D([], [], color=c, label=t) for t, c in TRANSITION_COLOUR.items() if t != "stable negative"]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def draw_cell_scatter(plt, runs: pd.DataFrame, grid: Grid = PUBLISHED):
    """The original's Figure 2: Δ parse-failure rate against Δ accuracy (refined − strict) for every run cell."""
    fig, ax = plt.subplots(figsize=(6.3, 4.5))
    bench_colour = colours(BENCH_COLOUR, grid.benchmarks)
    for bench in grid.benchmarks:
        part = runs[runs["benchmark"] == bench]
        ax.scatter(((part["pf_refined"] - part["pf_strict"]) * 100).round(4),
                   ((part["acc_refined"] - part["acc_strict"]) * 100).round(4),
                   s=8, alpha=0.7 if bench in ("sib200", "xnli") else 0.25, color=bench_colour[bench],
                   label=f"{grid.title(bench)} ({len(part)})")
    ax.axhline(0, color="grey", linewidth=0.5, linestyle="dashed")
    ax.axvline(0, color="grey", linewidth=0.5, linestyle="dashed")
    at_least_one_pp(ax, x=True)
    ax.set_xlabel("Δ parse-failure rate, refined − strict (pp)")
    ax.set_ylabel("Δ accuracy, refined − strict (pp)")
    ax.set_title(f"{len(runs)} run cells")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def draw_signflips(plt, flips: pd.DataFrame):
    """The original's Figure 4: each cell whose sign of Δ vs baseline flips between extractors."""
    fig, ax = plt.subplots(figsize=(6.3, max(3.0, 0.25 * len(flips) + 1.5)))
    if flips.empty:
        ax.text(0.5, 0.5, "no cell changes the sign of its Δ vs baseline\nbetween the strict and refined extractors",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        for _, row in flips.iterrows():
            orig, rep = row["delta_orig"] * 100, row["delta_rep"] * 100
            colour = TRANSITION_COLOUR["win→loss" if orig > rep else "loss→win"]
            ax.plot([0, 1], [orig, rep], marker="o", markersize=3, color=colour, linewidth=1)
            ax.annotate(f"{BENCH_TITLE.get(row['benchmark'], row['benchmark'])} · t{row['template']} · "
                        f"{row['data']}→{row['instr']} · {row['condition']} · s{row['seed']}",
                        (1, rep), xytext=(4, 0), textcoords="offset points", fontsize=5, va="center")
        ax.set_xticks([0, 1], ["strict", "refined"])
        ax.set_xlim(-0.1, 2.2)
        ax.set_ylabel("Δ vs baseline (pp)")
    ax.axhline(0, color="grey", linewidth=0.5, linestyle="dashed")
    ax.set_title(f"Sign flips: {len(flips)} cells")
    fig.tight_layout()
    return fig


def write_tsv(path: Path, frame: pd.DataFrame) -> None:
    path.write_text(frame.to_csv(sep="\t", index=False, lineterminator="\n"), encoding="utf-8")


def write_plot_data(folder: Path, vs: pd.DataFrame, runs: pd.DataFrame, delta: str = "delta_rep") -> None:
    """The tidy TSVs that dvc.yaml's top-level ``plots:`` read, so ``dvc plots diff`` compares phases and runs."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "seed_spread.tsv", seed_spread(vs, delta))
    write_tsv(folder / "strict_vs_refined.tsv", strict_vs_refined(runs))


def write_figures(folder: Path, vs: pd.DataFrame, runs: pd.DataFrame, sig: pd.DataFrame,
                  flips: pd.DataFrame, grid: Grid = PUBLISHED) -> str | None:
    """Write every figure in three formats plus its data; returns why none were written, or None.

    ``vs``/``runs`` use the report's in-memory names (``data_lang``, ``instr_lang``); ``sig`` and ``flips`` are the
    tables as written (``data``, ``instr``); ``grid`` the benchmarks (panels) and languages (series) drawn.
    """
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: plots skipped (pin matplotlib to get plots/*)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_plot_data(folder, vs, runs)
    seeds = seed_counts(vs)
    spread = seed_spread(vs)
    scores = strict_vs_refined(runs)
    slopes = extractor_slopes(vs)
    write_tsv(folder / "extractor_slopegraph.tsv", slopes)
    with matplotlib.rc_context({"svg.hashsalt": "report", "font.size": 8, "pdf.fonttype": 42}):
        for name, fig in (("deltas_by_prompt", draw_deltas(plt, spread, sig, seeds, grid)),
                          ("strict_vs_refined", draw_strict_vs_refined(plt, scores, grid)),
                          ("extractor_slopegraph", draw_extractor_slopegraph(plt, slopes, grid)),
                          ("cell_scatter", draw_cell_scatter(plt, runs, grid)),
                          ("signflip_slopegraph", draw_signflips(plt, flips))):
            save(fig, folder, name)
            plt.close(fig)
    return None


def write_phase2_figure(folder: Path, vs: pd.DataFrame, conditions: list[str], design: phase2_results.Design) -> str | None:
    """Phase 2: strict Δ vs baseline (pp, mean over data languages) per condition × benchmark, one panel per
    prompt, the conditions in params' session order; returns why it was not written, or None."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: plots skipped (pin matplotlib to get plots/*.png)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.hashsalt": "report", "font.size": 8})
    folder.mkdir(parents=True, exist_ok=True)
    conditions = [c for c in conditions if c != BASELINE]
    prompts = vs.assign(prompt=[phase2_results.prompt_of(r, design) for _, r in vs.iterrows()])
    width = 0.8 / len(design.benchmarks)
    fig, axes = plt.subplots(1, len(phase2_results.PROMPTS), figsize=(10, 4), sharey=True)
    for ax, prompt in zip(np.atleast_1d(axes), phase2_results.PROMPTS):
        part = prompts[prompts["prompt"] == prompt]
        for k, bench in enumerate(design.benchmarks):
            means = part[part["benchmark"] == bench].groupby("condition")["delta_orig"].mean() * 100
            ax.bar(np.arange(len(conditions)) + k * width, [means.get(c, np.nan) for c in conditions], width, label=bench)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(f"{prompt} prompt")
        ax.set_xticks(np.arange(len(conditions)) + 0.4 - width / 2, [display_name(c) for c in conditions], rotation=90)
    np.atleast_1d(axes)[0].set_ylabel("strict Δ vs baseline (pp)")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(folder / "deltas_vs_baseline.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return None
