"""A fifth language and a new benchmark with no code change: a task YAML and a fixture in a temporary
folder, a params edit, and the study runs them through evaluate, reparse and the report stage.

The new benchmark ``quiz`` (A-D questions, scored as Belebele through ``extract_as``) lives in a folder
named by ``evaluate.tasks_dirs``; the fifth language ``fr`` is one more entry of ``data_langs`` and
``instr_langs`` and one more grid entry (``condition-2-fr-5k``). One baseline session is evaluated with a tiny
random base of the base stage's architecture; the fr run's files, for the report, are the baseline's own
outputs of the cells a run trained on fr is prompted in (so each Δ vs baseline is 0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages.lib import paths, reparse_core, stats
from stages.lib.params import parse_params
from stages.lib.results_index import Grid, expected_cells, expected_from_params, load_sessions
from tools.configure import PROFILES, render

LANGS = ["en", "zh", "es", "ur", "fr"]
ROWS = 3

QUIZ = {
    "name": "quiz",
    "title": "Quiz",
    "about": "A made-up A-D benchmark in five languages (tests only).",
    "n_examples": ROWS,
    "extract_as": "belebele",
    "langs": {lang: lang for lang in LANGS},
    "source": {"fixture": {"path": "quiz/{code}/test.parquet"}},
    "fields": {"question": "question", "a": "a", "b": "b", "c": "c", "d": "d"},
    "gold": {"column": "answer", "normalise": "upper"},
    "row_keys": {"question": "question"},
    "choices": ["A", "B", "C", "D"],
    "templates": {"phase3": {
        wording: {lang: f"[{wording} {lang}] {{question}}\nA. {{a}}\nB. {{b}}\nC. {{c}}\nD. {{d}}\nAnswer:" for lang in LANGS}
        for wording in ("template1", "template2")
    }},
}


def base_model(folder: Path) -> Path:
    """A tiny random base of the base stage's architecture, its tokenizer trained on the quiz's prompts."""
    from stages.base import build_model, train_tokenizer

    texts = [text for wordings in QUIZ["templates"]["phase3"].values() for text in wordings.values()]
    texts += [f"{lang} question {i}? one two three four A B C D" for lang in LANGS for i in range(ROWS)]
    tokenizer = train_tokenizer(texts, 300, 0, 256)
    model = build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 256}, len(tokenizer), 0,
                        tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "quiz.yaml").write_text(yaml.safe_dump(QUIZ, allow_unicode=True, sort_keys=False), encoding="utf-8")
    fixtures = root / "fixtures"
    for lang in LANGS:
        folder = fixtures / "quiz" / lang
        folder.mkdir(parents=True)
        pd.DataFrame({
            "question": [f"{lang} question {i}?" for i in range(ROWS)],
            "a": ["one"] * ROWS, "b": ["two"] * ROWS, "c": ["three"] * ROWS, "d": ["four"] * ROWS,
            "answer": ["a", "b", "c"][:ROWS],
        }).to_parquet(folder / "test.parquet")

    profiles = root / "profiles"
    shutil.copytree(PROFILES, profiles)
    base = yaml.safe_load((profiles / "base.yaml").read_text(encoding="utf-8"))
    base["grid"].append({"condition": 2, "langs": ["fr"], "tiers": ["5k"], "seeds": [42],
                         "run_name": "condition-2-{lang}-{tier}-seed{seed}", "condition_folder": "condition-2-{lang}-{tier}",
                         "dataset": "condition-2-{lang}-{tier}"})
    base["evaluate"].update(benchmarks=["quiz"], tasks_dirs=[str(tasks)], data_langs=LANGS, instr_langs=LANGS,
                            fixtures_dir=str(fixtures))
    (profiles / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    params = parse_params(render("smoke", "phase3", profiles))
    return root, params


def test_the_fifth_language_is_a_grid_entry_with_its_published_folders(extended):
    _, params = extended
    run = params.runs["condition-2-fr-5k-seed42"]
    assert (run.condition, run.data_lang, run.seed) == (2, "fr", 42)
    session = params.evaluate.sessions["condition-2-fr-5k-seed42"]
    assert (session.condition, session.seed) == ("condition-2-fr-5k", 42)
    assert session.out == "metrics/eval/phase3/conditions/condition-2-fr-5k/seed42"
    assert session.adapter == "tiny-aya-base/condition-2-fr-5k-seed42"
    grid = Grid.of(params.evaluate)
    assert grid.benchmarks == ("quiz",) and grid.langs == ("en", "es", "zh", "ur", "fr")  # the tables' order, fr after
    # a run trained on fr is prompted in the anchor language and its own
    assert {c[3] for c in expected_cells("condition-2-fr-5k", grid=grid)} == {"en", "fr"}
    assert len(expected_cells("baseline", grid=grid)) == 2 * 1 * 5 * 5


@pytest.fixture(scope="module")
def evaluated(extended, tmp_path_factory):
    """The baseline session evaluated and reparsed under ``work/metrics``, with the params file beside it."""
    from stages.evaluate import evaluate_session
    from stages.reparse import reparse_sessions

    root, params = extended
    work = tmp_path_factory.mktemp("work")
    session = params.evaluate.sessions["baseline"]
    out = work / "metrics" / "eval" / paths.eval_folder("phase3", session.condition, session.seed)
    evaluate_session(params, "baseline", out=out, base_dir=base_model(work / "base"), models_dir=work / "models",
                     resume_root=work / "resume", progress=False)
    # reparse: the stage's sessions mode, with the params of this study (run where metrics/ lives)
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        assert reparse_sessions(Path("params.yaml"), jobs=1, stamp_time=False, no_repo_head=True) == 0
    return work


def test_evaluate_reparse_and_report_take_them_with_no_code_change(extended, evaluated):
    _, params = extended
    tmp_path = evaluated
    eval_dir, reparsed_dir = tmp_path / "metrics" / "eval", tmp_path / "metrics" / "reparsed"
    out = eval_dir / paths.eval_folder("phase3", "baseline", None)
    results = json.loads((out / paths.result_file_name("baseline", None, "results", "template1")).read_text("utf-8"))
    cells = [key for key in results if key not in ("summary", "parse_failure_rates")]
    assert len(cells) == 25 and "template1_quiz_data=fr_instr=fr" in cells
    assert [row["question"] for row in results["template1_quiz_data=fr_instr=en"]] == [f"fr question {i}?" for i in range(ROWS)]
    assert (out / paths.result_file_name("baseline", None, "summary_loglik", "template2")).is_file()

    reparsed = json.loads((reparsed_dir / paths.eval_folder("phase3", "baseline", None) /
                           paths.result_file_name("baseline", None, "summary_reparsed", "template1")).read_text("utf-8"))
    assert reparsed["summary"]["template1_quiz_data=fr_instr=fr_count"] == ROWS
    assert reparsed["reparse_metadata"]["extractor_provenance"]["extractor_versions"] == {"quiz": "refined-1.0"}

    # the report's reading, sorting and statistics
    grid = Grid.of(params.evaluate)
    index = expected_from_params(params.evaluate.sessions, eval_dir, params.evaluate.templates, reparsed_dir)
    assert [s.condition for s in index.sessions] == ["baseline", "baseline"]
    assert {m["condition"] for m in index.missing} >= {"condition-2-fr-5k"}  # not evaluated: listed, not guessed
    runs, correct, _ = load_sessions(index.sessions, grid=grid)
    assert len(runs) == 50 and set(runs["benchmark"]) == {"quiz"} and set(runs["data_lang"]) == set(LANGS)
    assert list(runs["data_lang"].drop_duplicates()) == ["en", "es", "zh", "ur", "fr"]
    assert (runs["n"] == ROWS).all()
    assert correct[("baseline", "none", 1, "quiz", "fr", "fr")].size == ROWS
    fr = runs[(runs["data_lang"] == "fr") & (runs["instr_lang"] == "fr") & (runs["template"] == 1)].iloc[0]
    assert fr["acc_refined"] == reparsed["summary"]["template1_quiz_data=fr_instr=fr_acc"]
    assert "quiz" not in stats.N_EXAMPLES and "quiz" not in stats.n_mismatches(runs)  # no published n: none to differ from


def as_fr_run(body: dict) -> dict:
    """A baseline results file as the fr run's: the cells prompted in the anchor language or fr only."""
    def keep(key: str) -> bool:
        stem, _, suffix = key.rpartition("_")
        cell = stem if suffix in ("acc", "count", "correct") else key
        return reparse_core.parse_cell_key(cell).instr_lang in ("en", "fr")

    return {key: ({k: v for k, v in value.items() if keep(k)} if key in reparse_core.SUMMARY_KEYS else value)
            for key, value in body.items() if key in reparse_core.SUMMARY_KEYS or keep(key)}


def test_the_report_stage_writes_the_fifth_language_and_the_new_benchmark(extended, evaluated, tmp_path):
    from stages.report import main

    _, params = extended
    metrics = shutil.copytree(evaluated / "metrics", tmp_path / "metrics")  # the fixture's folder stays the baseline's
    eval_dir = metrics / "eval"
    folder = eval_dir / paths.eval_folder("phase3", "condition-2-fr-5k", 42)
    folder.mkdir(parents=True, exist_ok=True)
    for template in params.evaluate.templates:
        body = json.loads((eval_dir / paths.eval_folder("phase3", "baseline", None) /
                           paths.result_file_name("baseline", None, "results", template)).read_text("utf-8"))
        (folder / paths.result_file_name("condition-2-fr-5k", 42, "results", template)).write_text(
            json.dumps(as_fr_run(body)), encoding="utf-8")

    reports = tmp_path / "reports"
    assert main(["--params", str(evaluated / "params.yaml"), "--eval-dir", str(eval_dir),
                 "--reparsed-dir", str(metrics / "reparsed"), "--out", str(reports), "--jobs", "1",
                 "--bootstrap-resamples", "50"]) == 0

    runs = pd.read_csv(reports / "runs.csv")
    assert set(runs["condition"]) == {"baseline", "condition-2-fr-5k"} and set(runs["benchmark"]) == {"quiz"}
    assert len(runs) == 50 + 2 * 5 * 2  # the baseline's 2 x 5 x 5 cells, the fr run's 2 templates x 5 data x (en, fr)
    assert list(runs["data_lang"].drop_duplicates()) == ["en", "es", "zh", "ur", "fr"]
    vs = pd.read_csv(reports / "vs_baseline_cells.tsv", sep="\t")
    fr = vs[(vs["condition"] == "condition-2-fr-5k") & (vs["data"] == "fr") & (vs["instr"] == "fr")]
    assert list(fr["benchmark"]) == ["quiz", "quiz"] and (fr["delta_rep"] == 0).all()
    assert set(vs["instr"]) == {"en", "fr"} and len(vs) == 20
    sig = pd.read_csv(reports / "significance.tsv", sep="\t")
    assert set(zip(sig["benchmark"], sig["data"], sig["instr"])) >= {("quiz", "fr", "fr"), ("quiz", "fr", "en")}
    assert list(json.loads((reports / "metrics.json").read_text("utf-8"))) == ["quiz"]
    missing = pd.read_csv(reports / "missing.tsv", sep="\t")  # the smoke runs not evaluated here, and nothing else
    assert set(missing["what"]) == {"strict", "refined"} and not {"baseline", "condition-2-fr-5k"} & set(missing["condition"])
    # the paper's tables keep the paper's grid (the extras are in the tables above); figures draw the grid's panels
    assert "Quiz" not in (reports / "tables.tex").read_text("utf-8")
    assert (reports / "plots" / "deltas_by_prompt.png").is_file()


def test_the_published_study_grid_still_rejects_the_fifth_language(extended, tmp_path):
    """Without the params' grid (a --published snapshot), a cell outside the study is named, not guessed."""
    from stages.lib.results_index import ReportError, Session, load_session

    folder = tmp_path / "s"
    folder.mkdir()
    path = folder / paths.result_file_name("baseline", None, "summary", "template1")
    path.write_text(json.dumps({"summary": {"template1_xnli_data=fr_instr=en_acc": 0.5}, "parse_failure_rates": {}}))
    with pytest.raises(ReportError, match="language 'fr' is not one of the study's en, es, zh, ur"):
        load_session(Session("baseline", "none", "template1", {"summary": path}))


def test_the_paper_tables_average_over_the_published_grid_only():
    from stages.lib.phase3_report import in_paper_grid

    vs = pd.DataFrame({"benchmark": ["xnli", "xnli", "quiz", "xnli"], "data_lang": ["en", "fr", "en", "es"],
                       "instr_lang": ["en", "en", "en", "fr"], "delta_rep": [0.1, 0.9, 0.9, 0.9]})
    assert in_paper_grid(vs)["delta_rep"].tolist() == [0.1]
    published = vs.iloc[[0]]
    assert in_paper_grid(published) is published  # the published grid: the frame itself, unchanged
