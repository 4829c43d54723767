"""The figures split by prompt language, mark single seeds, and rebuild byte-identically in three formats."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.lib import figures
from stages.lib.results_index import PUBLISHED


def vs_frame() -> pd.DataFrame:
    rows = []
    for condition, seeds, instrs in (("condition-1-en-5k", ("42", "123"), ("en", "es", "zh", "ur")),
                                     ("condition-2-es-20k", ("42",), ("en", "es"))):
        for seed in seeds:
            for bench in PUBLISHED.benchmarks:
                for data in PUBLISHED.langs:
                    for instr in instrs:
                        delta = 0.02 * (int(seed) % 5) + (0.1 if instr == "en" else -0.1)
                        rows.append({"condition": condition, "seed": seed, "template": 1, "benchmark": bench,
                                     "data_lang": data, "instr_lang": instr, "delta_rep": delta,
                                     "delta_orig": -delta if bench == "sib200" else delta})
    return pd.DataFrame(rows)


def runs_frame(vs: pd.DataFrame) -> pd.DataFrame:
    runs = vs[["condition", "seed", "template", "benchmark", "data_lang", "instr_lang"]].copy()
    runs["acc_strict"], runs["acc_refined"], runs["pf_strict"], runs["pf_refined"] = 0.4, 0.5, 0.3, 0.1
    return runs


def sig_frame(vs: pd.DataFrame) -> pd.DataFrame:
    cells = vs.groupby(["condition", "benchmark", "data_lang", "instr_lang"], as_index=False)["delta_rep"].mean()
    cells = cells.rename(columns={"data_lang": "data", "instr_lang": "instr"})
    cells["delta_pp"] = cells.pop("delta_rep") * 100
    one = cells["condition"] == "condition-2-es-20k"
    cells["item_boot_ci_low_pp"], cells["item_boot_ci_high_pp"] = cells["delta_pp"] - 3, cells["delta_pp"] + 3
    cells["seed_item_boot_ci_low_pp"] = (cells["delta_pp"] - 5).where(~one)
    cells["seed_item_boot_ci_high_pp"] = (cells["delta_pp"] + 5).where(~one)
    return cells


def test_prompt_language_separates_english_native_and_cross_lingual():
    data = pd.Series(["en", "es", "es", "zh"])
    instr = pd.Series(["en", "en", "es", "es"])
    assert list(figures.prompt_of(data, instr)) == ["English prompt", "English prompt", "native prompt",
                                                    "cross-lingual prompt"]


def test_seed_spread_keeps_like_sets_apart_and_counts_seeds():
    spread = figures.seed_spread(vs_frame())
    assert set(spread["prompt"]) == {"English prompt", "native prompt"}  # cross-lingual cells are left out
    english = spread[(spread["prompt"] == "English prompt") & (spread["benchmark"] == "xnli")]
    # every condition has the same English-prompt cells: all four data languages
    assert english.groupby("condition")["data_lang"].apply(lambda s: sorted(set(s))).map(tuple).nunique() == 1
    native = spread[(spread["prompt"] == "native prompt") & (spread["condition"] == "condition-2-es-20k")]
    assert set(native["data_lang"]) == {"es"}
    assert dict(zip(spread["condition"], spread["n_seeds"])) == {"condition-1-en-5k": 2, "condition-2-es-20k": 1}
    assert english["delta_pp"].max() == pytest.approx(16.0)


def test_single_seed_conditions_are_labelled():
    seeds = {"condition-1-en-5k": 3, "condition-2-es-20k": 1}
    assert figures.label("condition-2-es-20k", seeds).endswith("(1 seed)")
    assert "seed" not in figures.label("condition-1-en-5k", seeds)


@pytest.mark.parametrize("orig, rep, expected", [(5, -3, "win→loss"), (-5, 3, "loss→win"), (5, 2, "deflated"),
                                                 (2, 5, "stable positive"), (-2, -5, "stable negative"),
                                                 (0.2, -0.3, "near zero")])
def test_transition_colours_follow_the_original_figure(orig, rep, expected):
    assert figures.transition(orig, rep) == expected


def test_figures_exist_in_three_formats_and_rebuild_byte_identically(tmp_path):
    pytest.importorskip("matplotlib")
    vs = vs_frame()
    flips = vs[vs["benchmark"] == "sib200"].head(3).rename(columns={"data_lang": "data", "instr_lang": "instr"})
    for out in ("a", "b"):
        assert figures.write_figures(tmp_path / out, vs, runs_frame(vs), sig_frame(vs), flips) is None
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert first == {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    for name in ("deltas_by_prompt", "strict_vs_refined", "extractor_slopegraph", "cell_scatter", "signflip_slopegraph"):
        assert {f"{name}.{fmt}" for fmt in figures.FORMATS} <= set(first)
        assert b"CreationDate" not in first[f"{name}.pdf"] and b"Matplotlib" not in first[f"{name}.pdf"]
        assert b"<dc:date>" not in first[f"{name}.svg"] and b"Matplotlib v" not in first[f"{name}.svg"]
        assert b"matplotlib version" not in first[f"{name}.png"].lower()


def test_the_condition_axis_and_the_plot_data_follow_the_papers_order():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shuffled = ("condition-2-zh-5k", "condition-1-en-20k", "condition-2-es-5k", "condition-1-en-5k")
    vs = pd.concat([vs_frame().assign(condition=c) for c in shuffled], ignore_index=True)
    paper = ["condition-1-en-5k", "condition-1-en-20k", "condition-2-es-5k", "condition-2-zh-5k"]  # not alphabetical
    spread = figures.seed_spread(vs)
    assert list(dict.fromkeys(spread["condition"])) == paper
    assert list(dict.fromkeys(figures.strict_vs_refined(runs_frame(vs))["condition"])) == paper
    fig = figures.draw_deltas(plt, spread, sig_frame(vs), figures.seed_counts(vs))
    try:
        bottom = fig.axes[len(PUBLISHED.benchmarks)]  # the lower row carries the shared axis labels
        assert [t.get_text() for t in bottom.get_xticklabels()] == [c.replace("condition-", "c") for c in paper]
    finally:
        plt.close(fig)


def test_a_language_beyond_the_study_gets_a_colour_of_its_own():
    palette = figures.colours(figures.LANG_COLOUR, ("en", "es", "zh", "ur", "fr", "de"))
    assert {k: palette[k] for k in figures.LANG_COLOUR} == figures.LANG_COLOUR
    assert palette["fr"] != palette["de"] and not {palette["fr"], palette["de"]} & set(figures.LANG_COLOUR.values())
