"""stages.report on a Phase 2 params.yaml, with small synthetic result files and hand-computable numbers.

The params are the repository's Phase 2 smoke profile (baseline + six runs). Only three sessions
have files; 10 rows per cell, the first k right, row 9 a parse failure (``pred`` null) when wrong:

    baseline            native 0.5 | English 0.5
    condition-2-zh-5k   native 0.7 | English 0.4
    condition-1-en-5k   native 0.6 | English 0.6   (its native file lacks csqa_ur)

so Cond 2-zh is +20.0 pp native and -10.0 pp English on every cell, and its mean strict
accuracy per benchmark is (3 × 0.7 + 3 × 0.4) / 6 = 0.55, Δ +0.05.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stages import report
from tools.configure import render, to_yaml
from stages.lib.results_index import ReportError

BENCH = ("mgsm", "xnli", "csqa")
LANGS = ("zh", "es", "ur")
GOLD = {"mgsm": "18", "xnli": "entailment", "csqa": "B"}
N = 10
COND2, COND1 = "condition-2-zh-5k", "condition-1-en-5k"
ACC = {"baseline": {"native": 0.5, "english": 0.5}, COND2: {"native": 0.7, "english": 0.4},
       COND1: {"native": 0.6, "english": 0.6}}
PARAMS = render("smoke", "phase2")


def folder_of(eval_dir: Path, session: str) -> Path:
    """Where evaluate@<session> writes, as params says (its ``out`` under metrics/eval)."""
    spec = PARAMS["evaluate"]["sessions"].get(session, {"out": f"metrics/eval/phase2/conditions/{session}/results"})
    return eval_dir / Path(spec["out"]).relative_to("metrics/eval")


def cell_rows(bench: str, acc: float) -> list[dict]:
    k = round(acc * N)
    rows = []
    for i in range(N):
        pred = GOLD[bench] if i < k else (None if i == N - 1 else "X")
        rows.append({"question": f"q{i}", "raw_output": str(pred), "pred": pred, "gold": GOLD[bench], "correct": i < k})
    return rows


def write_session(eval_dir: Path, condition: str, skip: tuple = ()) -> None:
    folder = folder_of(eval_dir, condition)
    folder.mkdir(parents=True, exist_ok=True)
    for prompt in ("english", "native"):
        body = {"summary": {}}
        for bench in BENCH:
            for lang in LANGS:
                key = f"{bench}_{lang}"
                if (prompt, key) in skip:
                    continue
                body["summary"][f"{key}_acc"] = ACC[condition][prompt]
                body[key] = cell_rows(bench, ACC[condition][prompt])
        (folder / f"{prompt}_prompt_results.json").write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")


def phase2_params(path: Path) -> Path:
    path.write_text(to_yaml(PARAMS, "smoke", "phase2"), encoding="utf-8")
    return path


def make_eval(root: Path) -> Path:
    write_session(root, "baseline")
    write_session(root, COND2)
    write_session(root, COND1, skip=(("native", "csqa_ur"),))
    ACC["condition-9-xx-5k"] = {"native": 1.0, "english": 1.0}
    write_session(root, "condition-9-xx-5k")  # a stray folder params do not list: never read
    return root


def run(tmp: Path, out: Path, eval_dir: Path | None = None, *extra: str) -> int:
    return report.main(["--params", str(phase2_params(tmp / "params.yaml")), "--eval-dir", str(eval_dir or tmp / "eval"),
                        "--reparsed-dir", str(tmp / "reparsed"), "--out", str(out), "--jobs", "1", "--no-plots", *extra])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phase2")
    make_eval(tmp / "eval")
    assert run(tmp, tmp / "out") == 0
    return tmp / "out"


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)


def test_runs_csv_one_row_per_session_and_cell(done):
    runs = pd.read_csv(done / "runs.csv", keep_default_na=False, dtype=str)
    assert list(runs.columns) == ["condition", "seed", "template", "benchmark", "data_lang", "instr_lang", "n",
                                  "acc_strict", "pf_strict"]
    assert list(dict.fromkeys(runs.condition)) == ["baseline", COND1, COND2]  # params' order; the stray one unread
    assert set(runs.template) == {"phase2"}
    assert set(runs[runs.condition == "baseline"].seed) == {"none"}
    assert set(runs[runs.condition != "baseline"].seed) == {"42"}
    assert len(runs) == 18 + 17 + 18
    row = runs[(runs.condition == COND2) & (runs.benchmark == "xnli") & (runs.data_lang == "zh") & (runs.instr_lang == "zh")].iloc[0]
    assert (row.n, float(row.acc_strict), float(row.pf_strict)) == ("10", 0.7, 0.1)
    english = runs[(runs.condition == COND2) & (runs.instr_lang == "en")]
    assert set(english.data_lang) == set(LANGS) and set(english.acc_strict.astype(float)) == {0.4}


def test_missing_files_and_cells_are_listed(done):
    missing = tsv(done / "missing.tsv")
    files = missing[missing.what == "file"]
    assert set(files.condition) == {"condition-1-en-32k", "condition-2-es-5k", "condition-2-ur-5k", "condition-3-zh-5k"}
    assert len(files) == 8  # both prompt files of each
    cell = missing[missing.what == "cell"].iloc[0]
    assert (cell.condition, cell.benchmark, cell.data, cell.instr) == (COND1, "csqa", "ur", "ur")
    assert "condition-9-xx-5k" not in set(missing.condition)


def test_summary_table_accuracy_and_deltas(done):
    table = tsv(done / "tables" / "phase2_summary.tsv")
    assert list(table.columns) == ["condition", "label", "prompt", "measure"] + [f"{b}_{l}" for b in BENCH for l in LANGS]
    assert list(zip(table.prompt, table.measure))[:1] == [("native", "acc_pct")]
    acc = table[(table.measure == "acc_pct")].set_index(["condition", "prompt"])
    assert acc.loc[("baseline", "native"), "mgsm_zh"] == "50.0"
    assert acc.loc[(COND2, "native"), "xnli_ur"] == "70.0"
    assert acc.loc[(COND2, "english"), "csqa_es"] == "40.0"
    assert acc.loc[(COND1, "native"), "csqa_ur"] == ""  # absent cell: empty, not zero
    delta = table[(table.measure == "delta_pp")].set_index(["condition", "prompt"])
    assert "baseline" not in set(delta.index.get_level_values(0))
    assert set(delta.loc[(COND2, "native")].iloc[2:]) == {"20.0"}
    assert set(delta.loc[(COND2, "english")].iloc[2:]) == {"-10.0"}
    assert delta.loc[(COND1, "english"), "mgsm_zh"] == "10.0"
    assert acc.loc[(COND2, "native"), "label"] == "Cond 2 (zh, 5k)"


def test_metrics_json_numbers(done):
    data = json.loads((done / "metrics.json").read_text())
    assert list(data) == ["csqa", "mgsm", "xnli"]  # sorted keys, as Phase 3's
    assert data["xnli"]["baseline"] == {"acc_strict": 0.5, "n_seeds": 1}
    assert data["xnli"][COND2] == {"acc_strict": 0.55, "delta_strict": 0.05, "n_seeds": 1}
    assert data["csqa"][COND1] == {"acc_strict": 0.6, "delta_strict": 0.1, "n_seeds": 1}  # over its 5 csqa cells


def test_metrics_json_keys_line_up_with_phase3(done, tmp_path):
    from test_report import make_published  # the Phase 3 fixture (tests/ is on sys.path under pytest)

    published = make_published(tmp_path / "p3")
    assert report.main(["--published", str(published), "--out", str(tmp_path / "o3"), "--jobs", "1", "--no-plots",
                        "--bootstrap-resamples", "50"]) == 0
    p3 = json.loads((tmp_path / "o3" / "metrics.json").read_text())
    p2 = json.loads((done / "metrics.json").read_text())

    def leaves(tree: dict, prefix: str = "") -> set[str]:
        out = set()
        for key, value in tree.items():
            out |= leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    shared = leaves(p2) & leaves(p3)
    assert {"xnli.baseline.acc_strict", f"xnli.{COND2}.acc_strict", f"xnli.{COND2}.delta_strict"} <= shared
    assert all(k.split(".")[0] in ("xnli", "csqa") for k in shared)
    # every Phase 2 number is one Phase 3 also names (same schema); phase-specific ones differ by benchmark/scoring
    names = {k.rsplit(".", 1)[1] for k in leaves(p3)}
    assert {k.rsplit(".", 1)[1] for k in leaves(p2)} <= names
    assert not any(k.startswith("mgsm.") for k in leaves(p3)) and any(k.startswith("mgsm.") for k in leaves(p2))


def test_mcnemar_against_the_baseline(done):
    mc = tsv(done / "mcnemar.tsv")
    row = mc[(mc.condition == COND2) & (mc.benchmark == "mgsm") & (mc.data == "zh") & (mc.instr == "zh")].iloc[0]
    assert (row.template, row.n, row.cond_only, row.base_only, row.mcnemar_p) == ("phase2", "10", "2", "0", "0.500000")
    row = mc[(mc.condition == COND2) & (mc.benchmark == "mgsm") & (mc.data == "zh") & (mc.instr == "en")].iloc[0]
    assert (row.cond_only, row.base_only, row.mcnemar_p) == ("0", "1", "1.000000")


def test_every_declared_output_is_written(done):
    for name in ("tables.tex", "cells.tsv", "vs_baseline_cells.tsv", "conclusion_flips.tsv", "cross_seed_variance.tsv",
                 "significance.tsv", "mcnemar.tsv", "scoring_comparison.tsv", "runs.csv", "missing.tsv",
                 "provenance.json", "metrics.json"):
        assert (done / name).is_file(), name
    assert "no paper tables" in (done / "tables.tex").read_text()
    cells = tsv(done / "cells.tsv")
    assert set(cells.repar_acc) == {""} and "0.7000" in set(cells.orig_acc)
    scoring = tsv(done / "scoring_comparison.tsv").set_index(["condition", "benchmark"])
    assert scoring.loc[(COND2, "xnli"), "delta_strict"] == "0.0500"
    assert scoring.loc[(COND2, "xnli"), "sign_refined"] == ""
    prov = json.loads((done / "provenance.json").read_text())
    assert prov["params"]["source"]["phase"] == "phase2" and len(prov["inputs"]) == 6
    assert all(not p.startswith("/") for p in prov["inputs"])


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    make_eval(tmp_path / "eval")
    assert report.main(["--params", str(phase2_params(tmp_path / "params.yaml")), "--eval-dir", str(tmp_path / "eval"),
                        "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "plots" / "deltas_vs_baseline.png").stat().st_size > 0
    spread = pd.read_csv(tmp_path / "o" / "plots" / "seed_spread.tsv", sep="\t")  # Phase 3's schema: dvc plots diff
    assert set(spread["scoring"]) == {"strict"} and len(spread) > 0
    assert (tmp_path / "o" / "plots" / "strict_vs_refined.tsv").read_text().startswith("condition\tseed\t")


def test_two_runs_write_identical_bytes(tmp_path):
    make_eval(tmp_path / "eval")
    assert run(tmp_path, tmp_path / "a") == 0
    assert run(tmp_path, tmp_path / "b") == 0
    for name in ("runs.csv", "metrics.json", "tables/phase2_summary.tsv", "mcnemar.tsv", "missing.tsv", "tables.tex"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_malformed_file_names_it(tmp_path, capsys):
    make_eval(tmp_path / "eval")
    bad = folder_of(tmp_path / "eval", COND2) / "native_prompt_results.json"
    body = json.loads(bad.read_text())
    del body["summary"]["xnli_es_acc"]
    bad.write_text(json.dumps(body))
    assert run(tmp_path, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "xnli_es_acc" in err


def test_no_results_at_all_is_an_error(tmp_path, capsys):
    assert run(tmp_path, tmp_path / "o", tmp_path / "empty") == 1
    assert "no Phase 2 results" in capsys.readouterr().err


def test_loader_is_importable_alone():
    from stages.lib import phase2_results

    assert phase2_results.session_folder("metrics/eval/phase2/conditions/x/results", Path("/e")) == Path("/e/phase2/conditions/x/results")
    assert issubclass(ReportError, ValueError)
