"""benchmarks/smoke_signal.py: the smoke run's must-hold figures on tiny synthetic workspaces, and their PASS/FAIL."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from benchmarks import smoke_signal as sig

LABELS = ["entailment", "neutral", "contradiction"]
KEYS = ["template1_xnli_data=en_instr=en", "template1_xnli_data=en_instr=zh"]


def rows(preds, raws=None, gold="neutral"):
    raws = raws or [p if p is not None else "I think" for p in preds]
    return [{"premise": "p", "hypothesis": "h", "raw_output": r, "pred": p, "gold": gold, "correct": p == gold}
            for p, r in zip(preds, raws)]


VARIED = ["entailment", "neutral", "contradiction", "neutral", None, "entailment", "neutral", "contradiction", "neutral", "neutral"]


def write_workspace(root, sessions: dict[str, dict[str, list]], runs: list[dict], sds: list[str]):
    """params.yaml's evaluate.sessions, one results file per session, runs.csv and cross_seed_variance.tsv."""
    table = {}
    for session, entries in sessions.items():
        out = f"metrics/eval/phase3/conditions/{session}"
        (root / out).mkdir(parents=True)
        body = {"summary": {}, "parse_failure_rates": {}, **entries}
        (root / out / f"{session}_results_template1.json").write_text(json.dumps(body), encoding="utf-8")
        table[session] = {"weights": "models/x", "out": out}
    (root / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"sessions": table}}), encoding="utf-8")
    (root / "reports").mkdir()
    with (root / "reports" / "runs.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["condition", "seed", "template", "benchmark", "data_lang", "instr_lang",
                                                    "acc_strict", "acc_refined", "pf_strict", "pf_refined"])
        writer.writeheader()
        writer.writerows(runs)
    (root / "reports" / "cross_seed_variance.tsv").write_text(
        "condition\tsd_pp\n" + "".join(f"c\t{sd}\n" for sd in sds), encoding="utf-8")


def run_row(condition, seed, template, strict, refined, pf=0.0, data="en"):
    return {"condition": condition, "seed": seed, "template": template, "benchmark": "xnli", "data_lang": data,
            "instr_lang": "en", "acc_strict": strict, "acc_refined": refined, "pf_strict": pf, "pf_refined": 0.0}


GOOD_RUNS = [
    run_row("baseline", "none", 1, 0.4, 0.5, 0.1),
    run_row("c-5k", "42", 1, 0.5, 0.5), run_row("c-5k", "42", 2, 0.3, 0.4, 0.2),
    run_row("c-5k", "123", 1, 0.6, 0.6), run_row("c-5k", "123", 2, 0.6, 0.6),
    run_row("c-5k", "42", 1, 0.5, 0.5, data="zh"), run_row("c-5k", "123", 1, 0.5, 0.5, data="zh"),
]


def test_the_figures_of_a_workspace_with_every_phenomenon(tmp_path, capsys):
    changed = VARIED[:8] + ["entailment", "entailment"]  # two of ten rows differ from the baseline's
    write_workspace(tmp_path, {
        "baseline": {KEYS[0]: rows(VARIED), KEYS[1]: rows(VARIED, raws=["蕴含"] + VARIED[1:4] + ["???"] + VARIED[5:])},
        "c-5k-seed42": {KEYS[0]: rows(changed), KEYS[1]: rows(VARIED)},
    }, GOOD_RUNS, ["0.0000", "nan", "1.5000"])
    results = sig.read_results(tmp_path)
    assert sig.dominated_share(results) == (0.0, 4)
    assert sig.changed_vs_baseline(results) == {"c-5k-seed42": pytest.approx(2 / 20)}
    unclean = sig.unclean_by_instr(results)
    assert unclean["en"] == pytest.approx(2 / 20)  # the None rows
    assert unclean["zh"] == pytest.approx(3 / 20)  # + the native-script 蕴含, a pred the strict extractor kept
    scoring = sig.scoring_shares(GOOD_RUNS)
    assert scoring["strict_ne_refined"] == pytest.approx(2 / 7) and scoring["parse_failures"] == pytest.approx(2 / 7)
    # c-5k cells: (xnli, en, en) seed 42 mean 0.45 vs seed 123 0.6 -> sd > 0; (xnli, zh, en) 0.5 vs 0.5 -> sd 0
    assert sig.seed_sd_share(GOOD_RUNS) == (0.5, 2)
    assert sig.accuracy_ranges(GOOD_RUNS)["xnli"]["strict"] == pytest.approx((0.3, 0.4857142857, 0.6))
    assert sig.main(["--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") == 6
    assert json.loads(out.splitlines()[-1].removeprefix("RESULT "))["failed"] == 0


def test_a_degenerate_workspace_fails_every_line(tmp_path, capsys):
    same = ["neutral"] * 10
    flat = [run_row("baseline", "none", 1, 0.3, 0.3)] + [run_row("c-5k", s, 1, 0.3, 0.3) for s in ("42", "123")]
    write_workspace(tmp_path, {"baseline": {KEYS[0]: rows(same)}, "c-5k-seed42": {KEYS[0]: rows(same)}}, flat, ["0.0000", "nan"])
    figures = sig.figures_of(sig.read_results(tmp_path), flat, [{"sd_pp": "0.0000"}, {"sd_pp": "nan"}])
    lines = sig.checks(figures)
    assert [line["pass"] for line in lines] == [False] * 6
    assert figures["dominated"] == 1.0 and figures["changed_vs_baseline"] == {"c-5k-seed42": 0.0}
    assert sig.main(["--root", str(tmp_path)]) == 1
    assert sig.main(["--root", str(tmp_path), "--no-fail"]) == 0
    assert capsys.readouterr().out.count("FAIL") == 12


def test_one_session_identical_to_the_baseline_fails_the_five_percent_rule(tmp_path):
    other = ["contradiction"] + VARIED[1:]
    write_workspace(tmp_path, {
        "baseline": {KEYS[0]: rows(VARIED)},
        "moved-seed42": {KEYS[0]: rows(["entailment"] * 5 + VARIED[5:])},
        "copy-seed42": {KEYS[0]: rows(other)},  # 1 row of 10 differs from the baseline's pred
        "same-seed42": {KEYS[0]: rows(VARIED)},
    }, GOOD_RUNS, ["1.0"])
    changed = sig.changed_vs_baseline(sig.read_results(tmp_path))
    assert changed == {"moved-seed42": 0.4, "copy-seed42": 0.1, "same-seed42": 0.0}
    line = sig.checks({**sig.figures_of(sig.read_results(tmp_path), GOOD_RUNS, [{"sd_pp": "1.0"}])})[3]
    assert line["value"] == 0.0 and not line["pass"]


def test_dominance_counts_none_as_one_answer_and_uses_the_ninety_percent_line():
    nine_none = {"s": {"k": rows([None] * 9 + ["neutral"])}}
    eight = {"s": {"k": rows(["neutral"] * 8 + ["entailment", None])}}
    assert sig.dominated_share(nine_none) == (1.0, 1)
    assert sig.dominated_share(eight) == (0.0, 1)


def test_no_multi_seed_cell_and_no_sd_are_failures_not_passes():
    single = [run_row("c-20k", "42", 1, 0.5, 0.5)]
    share, cells = sig.seed_sd_share(single)
    assert cells == 0 and math.isnan(share)
    assert not sig.variance_nontrivial([{"sd_pp": "nan"}, {"sd_pp": ""}, {"sd_pp": "0.0"}])
    figures = {"dominated": 0.0, "strict_ne_refined": 1.0, "parse_failures": 1.0, "changed_vs_baseline": {"a": 1.0},
               "seed_sd": share, "variance_nontrivial": False}
    assert [line["pass"] for line in sig.checks(figures)] == [True, True, True, True, False, False]


def test_a_missing_input_is_named(tmp_path, capsys):
    write_workspace(tmp_path, {"baseline": {KEYS[0]: rows(VARIED)}}, GOOD_RUNS, ["1.0"])
    (tmp_path / "reports" / "runs.csv").unlink()
    assert sig.main(["--root", str(tmp_path)]) == 2
    assert "reports/runs.csv: missing" in capsys.readouterr().err
