"""stages.reparse: a synthetic _results_ file in the published schema -> its _summary_reparsed_."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import reparse
from stages.lib import extractors
from stages.lib.errors import STAGE_FAILED

ROOT = Path(__file__).resolve().parents[1]
NAME = "condition-2-ur-5k_seed42_results_template1.json"
OUT_NAME = "condition-2-ur-5k_seed42_summary_reparsed_template1.json"

XNLI = "template1_xnli_data=zh_instr=en"
CSQA = "template1_csqa_data=zh_instr=en"
SIB = "template1_sib200_data=ur_instr=ur"
BELE_ES = "template1_belebele_data=es_instr=es"
BELE_EN = "template1_belebele_data=en_instr=en"

# (raw_output, gold) per cell, in file order
CELLS = {
    # strict: entailment, None, None, None, contradiction -> 1 correct, 3 failures
    # refined: entailment, entailment, neutral, None, contradiction -> 3 correct, 1 failure
    XNLI: [("entailment", "entailment"), ("答案是entailment", "entailment"), ("两句话没有任何关系", "neutral"),
           ("I don't know", "neutral"), ("contradiction", "entailment")],
    # identical under both: A, None, C -> 1 correct, 1 failure
    CSQA: [("A", "A"), ("答案是B", "B"), ("C vague", "D")],
    # strict: None, science/technology, travel -> 1 correct, 1 failure; refined: politics, None, travel -> 2, 1
    SIB: [("سیاست", "politics"), ("science/health", "health"), ("travel", "travel")],
    BELE_ES: [("D", "D"), ("ANSWERD", "A")],  # D, D -> 1 correct, 0 failures
    BELE_EN: [("B", "B"), ("", "C")],  # B, None -> 1 correct, 1 failure
}

FIELDS = {"xnli": ("premise", "hypothesis"), "csqa": ("stem",), "sib200": ("text",), "belebele": ("passage", "question")}


def results_body() -> dict:
    """A ``_results_`` file as evaluate wrote it: strict preds, summary and failure rates embedded."""
    body: dict = {"summary": {}, "parse_failure_rates": {}}
    for key, pairs in CELLS.items():
        cell = reparse.parse_cell_key(key)
        strict = extractors.get_extractor("strict", cell.benchmark)
        rows = []
        for raw, gold in pairs:
            pred = strict(raw)
            row = {field: f"{field} текст ٹیکسٹ" for field in FIELDS[cell.benchmark]}
            row.update(template=cell.template, instruction_lang=cell.instr_lang, raw_output=raw, pred=pred, gold=gold,
                       correct=pred == gold)
            rows.append(row)
        body[key] = rows
        body["summary"][f"{key}_acc"] = sum(r["correct"] for r in rows) / len(rows)
        body["parse_failure_rates"][key] = sum(r["pred"] is None for r in rows) / len(rows)
    body["summary"][f"{BELE_ES}_acc"] += 1e-12  # float noise below the 1e-9 rule: not a change
    del body["summary"][f"{BELE_EN}_acc"], body["parse_failure_rates"][BELE_EN]  # a missing old value
    return body


def write_results(folder: Path, body: dict | None = None, name: str = NAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(results_body() if body is None else body, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def results_path(tmp_path) -> Path:
    # the published Hub layout
    return write_results(tmp_path / "phase3" / "conditions" / "condition-2-ur-5k" / "seed42")


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.reparse", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, encoding="utf-8", check=False)


def git_head() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


# ----------------------------------------------------------------------------------- numbers


def test_summary_numbers_and_key_order(results_path):
    assert reparse.main([str(results_path)]) == 0
    out = json.loads((results_path.parent / OUT_NAME).read_text(encoding="utf-8"))
    assert list(out) == ["summary", "parse_failure_rates", "reparse_metadata"]
    assert list(out["summary"]) == [f"{key}_{stat}" for key in CELLS for stat in ("acc", "count", "correct")]
    assert [out["summary"][f"{key}_correct"] for key in CELLS] == [3, 1, 2, 1, 1]
    assert [out["summary"][f"{key}_count"] for key in CELLS] == [5, 3, 3, 2, 2]
    assert out["summary"][f"{XNLI}_acc"] == 3 / 5
    assert out["summary"][f"{SIB}_acc"] == 2 / 3
    assert list(out["parse_failure_rates"]) == list(CELLS)
    assert out["parse_failure_rates"] == {XNLI: 1 / 5, CSQA: 1 / 3, SIB: 1 / 3, BELE_ES: 0.0, BELE_EN: 1 / 2}


def test_delta_per_cell_follows_the_1e9_rule(results_path):
    reparse.main([str(results_path)])
    meta = json.loads((results_path.parent / OUT_NAME).read_text(encoding="utf-8"))["reparse_metadata"]
    # CSQA unchanged, BELE_ES moved by 1e-12 only: both left out
    assert list(meta["delta_per_cell"]) == [XNLI, SIB, BELE_EN]
    assert meta["cells_changed"] == 3
    xnli = meta["delta_per_cell"][XNLI]
    assert list(xnli) == ["old_acc", "new_acc", "delta_acc", "old_fail", "new_fail", "delta_fail"]
    assert (xnli["old_acc"], xnli["new_acc"], xnli["old_fail"], xnli["new_fail"]) == (1 / 5, 3 / 5, 3 / 5, 1 / 5)
    assert xnli["delta_acc"] == pytest.approx(0.4) and xnli["delta_fail"] == pytest.approx(-0.4)
    assert meta["delta_per_cell"][SIB]["delta_fail"] == 0.0
    # missing old values stay null, and count as 0 in the delta
    assert meta["delta_per_cell"][BELE_EN] == {"old_acc": None, "new_acc": 0.5, "delta_acc": 0.5,
                                               "old_fail": None, "new_fail": 0.5, "delta_fail": 0.5}


def test_cell_delta_threshold():
    assert reparse.cell_delta(0.5, 0.5 + 1e-9, 0.1, 0.1) is None
    assert reparse.cell_delta(0.5, 0.5 + 2e-9, 0.1, 0.1) is not None
    assert reparse.cell_delta(0.5, 0.5, 0.1, 0.1 - 2e-9) is not None


# -------------------------------------------------------------------------------- provenance


def test_provenance_fields(results_path):
    reparse.main([str(results_path)])
    meta = json.loads((results_path.parent / OUT_NAME).read_text(encoding="utf-8"))["reparse_metadata"]
    assert list(meta) == ["reparsed_at", "original_results_filename", "extractors_applied", "extractor_provenance",
                          "cells_changed", "delta_per_cell"]
    assert meta["reparsed_at"] is None
    assert meta["original_results_filename"] == NAME
    assert meta["extractors_applied"] == ["belebele", "csqa", "sib200", "xnli"]
    provenance = meta["extractor_provenance"]
    assert provenance["source_path"] == "extractors.py"
    assert provenance["content_sha256"] == extractors.source_sha256()
    assert provenance["extractor"] == "refined"
    assert provenance["extractor_versions"] == dict.fromkeys(["belebele", "csqa", "sib200", "xnli"], "refined-1.0")
    head = git_head()
    if head:
        assert provenance["repo_head_commit"] == head
    else:
        assert "repo_head_commit" not in provenance


def test_no_repo_head_and_stamp_time(results_path):
    reparse.main([str(results_path), "--no-repo-head", "--stamp-time"])
    meta = json.loads((results_path.parent / OUT_NAME).read_text(encoding="utf-8"))["reparse_metadata"]
    assert "repo_head_commit" not in meta["extractor_provenance"]
    stamped = dt.datetime.fromisoformat(meta["reparsed_at"])
    assert stamped.tzinfo is not None
    assert abs(dt.datetime.now(dt.timezone.utc) - stamped) < dt.timedelta(minutes=5)


def test_two_runs_write_identical_bytes_in_the_published_layout(results_path, tmp_path):
    out = results_path.parent / OUT_NAME
    reparse.main([str(results_path)])
    first = out.read_bytes()
    copy = write_results(tmp_path / "elsewhere")  # another folder, same content
    reparse.main([str(copy)])
    reparse.main([str(results_path)])
    assert out.read_bytes() == first == (copy.parent / OUT_NAME).read_bytes()
    text = first.decode("utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    assert not text.endswith("\n")
    assert str(tmp_path) not in text  # no machine path
    assert not list(out.parent.glob("*.tmp"))


def test_reparse_results_is_importable_and_pure():
    body = results_body()
    one = reparse.reparse_results(body, NAME, repo_head="abc123")
    assert one == reparse.reparse_results(body, NAME, repo_head="abc123")
    assert one["reparse_metadata"]["extractor_provenance"]["repo_head_commit"] == "abc123"
    strict = reparse.reparse_results(body, NAME, extractor_name="strict")
    # scored with the strict extractors, the embedded summary is reproduced: only the missing cell "changes"
    assert list(strict["reparse_metadata"]["delta_per_cell"]) == [BELE_EN]
    assert strict["reparse_metadata"]["extractor_provenance"]["extractor_versions"]["xnli"] == "strict-1.0"
    assert body == results_body()  # input untouched


def test_dumps_keeps_native_script():
    assert reparse.dumps({"a": "سیاست"}) == '{\n  "a": "سیاست"\n}'


def test_reparsed_path():
    assert reparse.reparsed_path(Path("d") / NAME) == Path("d") / OUT_NAME
    assert reparse.reparsed_path("baseline_seednone_smoke20_results_all.json").name == (
        "baseline_seednone_smoke20_summary_reparsed_all.json")
    with pytest.raises(reparse.ReparseError, match="_results_<template>.json"):
        reparse.reparsed_path("baseline_seednone_summary_template1.json")


# --------------------------------------------------------------------------------- bad input


def test_bad_files_are_named_and_the_others_still_written(tmp_path):
    good = write_results(tmp_path / "good")
    malformed = tmp_path / "bad" / "malformed_seed42_results_template1.json"
    malformed.parent.mkdir()
    malformed.write_text("{not json", encoding="utf-8")
    truncated = tmp_path / "bad" / "truncated_seed42_results_template1.json"
    truncated.write_text(good.read_text(encoding="utf-8")[:400], encoding="utf-8")
    unknown = write_results(tmp_path / "bad", {**results_body(), "template1_mmlu_data=en_instr=en": []},
                            "unknown_seed42_results_template1.json")
    body = results_body()
    del body[SIB][1]["raw_output"]
    missing = write_results(tmp_path / "bad", body, "missing_seed42_results_template1.json")
    # an output written before must survive a failed rerun of its input
    earlier = tmp_path / "bad" / "missing_seed42_summary_reparsed_template1.json"
    earlier.write_text("earlier", encoding="utf-8")
    wrong_name = write_results(tmp_path / "bad", results_body(), "condition-1-en-5k_seed42_summary_template1.json")

    done = run_cli("--jobs", "2", str(malformed), str(good), str(truncated), str(unknown), str(missing), str(wrong_name))

    assert done.returncode == STAGE_FAILED
    assert (good.parent / OUT_NAME).exists()
    assert OUT_NAME in done.stdout
    errors = done.stderr.splitlines()
    assert len(errors) == 5
    assert str(malformed) in errors[0] and "malformed or truncated JSON" in errors[0]
    assert str(truncated) in errors[1] and "line" in errors[1]
    assert str(unknown) in errors[2] and "cell 'template1_mmlu_data=en_instr=en': no 'refined' extractor for 'mmlu'" in errors[2]
    assert str(missing) in errors[3] and f"cell '{SIB}' row 1: missing 'raw_output'" in errors[3]
    assert str(wrong_name) in errors[4] and "not a results file" in errors[4]
    assert earlier.read_text(encoding="utf-8") == "earlier"
    assert sorted(p.name for p in (tmp_path / "bad").iterdir() if "summary_reparsed" in p.name) == [earlier.name]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.update({CSQA: []}), f"cell '{CSQA}': no rows"),
        (lambda b: b.update({CSQA: {"rows": 1}}), f"cell '{CSQA}': expected a list of rows"),
        (lambda b: b[CSQA].__setitem__(2, "A"), f"cell '{CSQA}' row 2: expected an object"),
        (lambda b: b[XNLI][0].__setitem__("raw_output", None), f"cell '{XNLI}' row 0: raw_output is NoneType"),
        (lambda b: b[XNLI][4].pop("gold"), f"cell '{XNLI}' row 4: missing 'gold'"),
        (lambda b: b.update({"summary": []}), "'summary' must be an object"),
        (lambda b: b.update({"config": {}}), "unknown cell key 'config'"),
        (lambda b: b["summary"].update({f"{CSQA}_acc": "0.3"}), f"summary['{CSQA}_acc'] is '0.3', not a number"),
    ],
)
def test_reparse_results_errors_name_the_source_and_place(mutate, message):
    body = results_body()
    mutate(body)
    with pytest.raises(reparse.ReparseError) as caught:
        reparse.reparse_results(body, NAME)
    assert str(caught.value).startswith(f"{NAME}: ")
    assert message in str(caught.value)


def test_top_level_must_be_an_object():
    with pytest.raises(reparse.ReparseError, match="top level"):
        reparse.reparse_results([1, 2], NAME)


def test_a_results_file_with_no_cells_is_an_error(tmp_path):
    with pytest.raises(reparse.ReparseError, match="no cells"):
        reparse.reparse_results({}, NAME)
    empty = write_results(tmp_path, {"summary": {}, "parse_failure_rates": {}}, NAME)
    done = run_cli(str(empty))
    assert done.returncode == STAGE_FAILED and str(empty) in done.stderr and "no cells" in done.stderr
    assert not (tmp_path / OUT_NAME).exists()


# ----------------------------------------------------------------------------------- --extract


def test_extract_cli_one_label_per_line():
    lines = [json.dumps(s, ensure_ascii=False) for s in ("سیاست", "science/health", "Travel.", "", "first\nsports")]
    done = run_cli("--extract", "sib200", "--extractor", "refined", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == ["politics", None, "travel", None, None]
    strict = run_cli("--extract", "sib200", "--extractor", "strict", stdin="\n".join(lines) + "\n")
    assert [json.loads(line) for line in strict.stdout.splitlines()] == [None, "science/technology", "travel", None, None]


def test_extract_cli_defaults_to_refined_and_reaches_phase2():
    done = run_cli("--extract", "xnli", stdin='"答案是entailment"\n')
    assert done.stdout == '"entailment"\n'
    mgsm = run_cli("--extract", "mgsm", "--extractor", "phase2", stdin='"1,000 then 18"\n"none"\n')
    assert mgsm.stdout == '"18"\nnull\n'


def test_extract_cli_rejects_bad_lines_and_pairs():
    done = run_cli("--extract", "csqa", stdin='"A"\nnot json\n"B"\n')
    assert done.returncode == STAGE_FAILED
    assert done.stdout == '"A"\n'
    assert "stdin line 2" in done.stderr
    assert run_cli("--extract", "csqa", stdin="5\n").returncode == STAGE_FAILED
    refused = run_cli("--extract", "mgsm", "--extractor", "strict", stdin="")
    assert refused.returncode == 2 and "available: phase2" in refused.stderr


def test_extract_cli_names_input_that_is_not_utf8():
    done = subprocess.run([sys.executable, "-m", "stages.reparse", "--extract", "xnli"], cwd=ROOT,
                          input=b'"entailment"\n"\xff\xfe broken"\n', capture_output=True, check=False)
    err = done.stderr.decode()
    assert done.returncode == STAGE_FAILED and "stdin is not UTF-8" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_usage_errors(results_path):
    assert run_cli().returncode == 2
    assert run_cli("--extract", "xnli", str(results_path)).returncode == 2
    assert run_cli("--extractor", "strict", str(results_path)).returncode == 2


def test_module_docstring_gives_the_command():
    assert "python -m stages.reparse" in reparse.__doc__


def test_sessions_mode_writes_each_session_and_names_what_it_skips(tmp_path, monkeypatch, capsys):
    """The dvc stage: every evaluate.sessions entry, its out folder into its reparsed folder."""
    from tools.configure import render

    params = render("smoke", "phase3")
    sessions = params["evaluate"]["sessions"]
    names = list(sessions)[:3]
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    evaluated, bad, not_run = (sessions[name] for name in names)
    write_results(Path(evaluated["out"]))
    broken = write_results(Path(bad["out"]))
    broken.write_text(broken.read_text(encoding="utf-8")[:200], encoding="utf-8")  # truncated mid-run
    stale = Path(evaluated["reparsed"]) / "old_summary_reparsed_template9.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")

    assert reparse.main(["--no-repo-head", "--jobs", "1", "--sessions", "params.yaml"]) == STAGE_FAILED
    err = capsys.readouterr().err
    assert str(broken) in err  # the bad file is named, and fails the stage
    assert repr(names[2]) in err and "skipped" in err  # not evaluated yet: named, not a failure
    written = sorted(p.name for p in Path(evaluated["reparsed"]).iterdir())
    assert written == [OUT_NAME, "provenance.json"]  # the good session is written, the stale file gone
    assert not Path(not_run["reparsed"]).exists()

    broken.unlink()
    assert reparse.main(["--no-repo-head", "--jobs", "1", "--sessions", "params.yaml"]) == 0


def test_sessions_mode_refuses_files_and_a_bad_params_file(tmp_path, results_path, capsys):
    with pytest.raises(SystemExit):
        reparse.main(["--sessions", "params.yaml", str(results_path)])
    missing = tmp_path / "nowhere.yaml"
    assert reparse.main(["--sessions", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
