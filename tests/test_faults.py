"""Faults and bad inputs (issue 9): each row stops or skips with a message naming the thing, and loses nothing
already finished. The whole fault table is here; a row tested in another file points to its test.

Each test checks (a) the stop or skip, (b) a message or ledger row naming the file, key or cell, (c) that
finished work is kept. "Here" means this file.

| row | tests |
|---|---|
| corpus file non-UTF-8 | test_filters.py::test_each_reason (undecodable); here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest, ::test_transpile_stdin_refuses_undecodable_and_binary_input |
| corpus file binary | test_filters.py::test_each_reason; test_transpile_stage.py::test_stage_keeps_idx_and_counts_every_refused_file; here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest, ::test_transpile_stdin_refuses_undecodable_and_binary_input |
| corpus file empty | test_filters.py::test_each_reason; test_transpile_stage.py::test_stage_keeps_idx_and_counts_every_refused_file; here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest |
| corpus file enormous | test_filters.py::test_each_reason (max_bytes 50); test_transpile_stage.py::test_stage_keeps_idx_and_counts_every_refused_file and here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest (1 MiB + 1 byte, the real caps) |
| corpus file syntactically broken | test_filters.py::test_each_reason (failed_parse); test_transpile_stage.py::test_stage_keeps_idx_and_counts_every_refused_file, ::test_stdin_cli_names_a_syntax_error; here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest |
| corpus path escaping the output folder | here ::test_fetch_ledgers_every_bad_file_and_keeps_the_rest. No stage writes a file per corpus path. The one name made from a path is fetch's ``file_path`` identity, and it is a bare basename for ``../../etc/x.py``, absolute and ``..\\`` paths. The raw path is kept only as data. |
| params: unknown key, wrong type, empty grid, run id with ``.`` or ``@`` | test_params.py::test_unknown_key_is_named, ::test_wrong_type_is_named, ::test_empty_grid_rejected, ::test_run_id_with_dot_or_at_rejected (the schema); here ::test_every_stage_refuses_bad_params_and_writes_nothing (every stage's command, earlier outputs untouched) |
| params: a key no stage lists, unknown or misspelt, under ``dvc repro`` (issue 23 item 2) | here ::test_dvc_repro_stops_a_bad_params_edit_before_any_stage_command (unknown key, misspelt key no stage lists: a real ``dvc repro``); test_dvc_yaml.py::test_every_stage_runs_after_the_params_check; test_repro.py::test_the_params_gate_runs_alone_first_and_a_failure_starts_nothing |
| params: a name that leaves its folder (``native.lang: x/../../t``, an absolute dataset) (item 4) | test_params.py::test_names_that_become_paths_or_commands_are_plain; test_paths.py (safe_join); here ::test_every_stage_refuses_bad_params_and_writes_nothing (language leaving data/, absolute grid dataset) |
| params: a shell command in a key dvc.yaml interpolates into a ``cmd`` (item 5) | here ::test_dvc_repro_stops_a_bad_params_edit_before_any_stage_command (shell command in keys: ``PWNED`` never created), ::test_every_stage_refuses_bad_params_and_writes_nothing (shell command in a tier key); test_params.py::test_names_that_become_paths_or_commands_are_plain |
| results file malformed | test_reparse.py::test_bad_files_are_named_and_the_others_still_written; test_report.py::test_malformed_file_names_the_file; here ::test_report_refuses_a_broken_results_file_and_keeps_the_last_report |
| results file truncated | test_reparse.py::test_bad_files_are_named_and_the_others_still_written; here ::test_report_refuses_a_broken_results_file_and_keeps_the_last_report |
| results file missing a cell in one seed | test_report.py::test_missing_cells_are_listed_not_fatal (missing.tsv and stderr name the cell, the rest is reported); test_report_phase2.py::test_missing_files_and_cells_are_listed |
| translate API: 429, 500, timeout, unreadable body (retried) | test_translate.py::test_cohere_retries_transient_faults_then_a_rerun_makes_no_call, ::test_openai_backend_speaks_chat_completions |
| translate API: errors that persist past the retries | test_translate.py::test_persistent_server_errors_stop_the_stage_after_bounded_retries; here ::test_translate_stopped_by_the_api_names_the_file_keeps_the_last_outputs_and_resumes |
| translate API: malformed (prose) or truncated answer | test_translate.py::test_unusable_answers_are_asked_again_then_recorded_as_failed (the ledger names each file) |
| translate API: labelled-mapping artefact | test_translate.py::test_artefact_from_the_model_is_stripped |
| translate API: key missing or rejected (401) | test_translate.py::test_missing_key_names_the_variable, ::test_the_key_never_appears_in_outputs_logs_or_errors |
| translate killed mid-run | test_translate.py::test_kill_mid_run_loses_nothing_and_pays_nothing_twice (SIGKILL) |
| translate API: a broken server (answers unusable), exit 0 with an empty condition 5 | test_translate.py::test_a_broken_server_fails_the_stage_then_a_fixed_one_is_asked_again (translate.min_success_rate, nothing cached), ::test_the_cache_key_includes_the_endpoint, ::test_unusable_answers_are_asked_again_then_recorded_as_failed |
| translate API: server down, every file spending its own retries | test_translate.py::test_a_server_that_is_down_stops_the_stage_after_a_few_connection_failures (translate.max_connection_failures), ::test_the_breaker_keeps_every_answer_received_before_it |
| translate API: credentials in ``base_url`` or echoed by the server | test_translate.py::test_credentials_in_base_url_or_echoed_by_the_server_are_never_stored (provenance.json, the cache, stdout and stderr) |
| translate: the Cohere/OpenAI SDK not installed | test_translate.py::test_a_missing_sdk_is_one_line_naming_the_extra |
| translate failed under DVC: its outputs are gone until ``dvc checkout`` | test_translate.py::test_the_docs_say_dvc_removes_a_failed_runs_outputs (the README and the stage's docstring say so) |
| report: a late error leaves mixed old and new outputs | test_report.py::test_a_late_failure_leaves_the_previous_report_whole |
| report: ``--bootstrap-resamples -5`` | test_report.py::test_a_negative_resample_count_is_one_line_and_writes_nothing |
| report: a template file, a benchmark's rows or a cell's scoring absent | test_report.py::test_an_absent_template_or_benchmark_rows_are_listed (missing.tsv) |
| results file: a language off the grid in a cell name | test_report.py::test_an_off_grid_language_names_the_file_and_cell |
| results file with no cells (``{}``) | test_reparse.py::test_a_results_file_with_no_cells_is_an_error |
| ``reparse --extract``: stdin not UTF-8 | test_reparse.py::test_extract_cli_names_input_that_is_not_utf8 |
| ``tools.repro`` while another DVC process holds the lock | test_repro.py::test_another_dvc_process_holding_the_lock_is_one_line |
| a stage command cannot reach a warm interpreter | test_warm.py::test_a_folder_others_can_write_is_refused_and_the_stage_runs_plainly, test_warm.py::test_without_waiting_the_first_command_runs_plainly_and_starts_one_for_the_next |
| the warm interpreter dies while a stage runs in its fork | test_warm.py::test_a_warm_interpreter_that_dies_mid_stage_fails_the_command_and_ends_the_stage |
| ``tools.repro`` sent SIGTERM: the running stage orphaned | test_repro.py::test_sigterm_is_passed_on_to_the_running_stage |
| ``transpile --stdin``: ``--lang xx``; 50 MB of input | test_transpile_stage.py::test_stdin_cli_names_an_unknown_language, ::test_stdin_cli_caps_its_input_as_the_stage_does |
| fetch: a Hub dataset unreachable (offline) | test_sources_hub.py::test_an_unreachable_hub_dataset_is_one_line |
| train killed mid-run and resumed | test_train.py::test_killed_run_resumes_to_the_same_bytes (SIGKILL after a checkpoint), ::test_last_checkpoint_skips_an_incomplete_save, ::test_checkpoints_of_other_params_are_never_resumed |
| evaluate killed mid-run and resumed | test_evaluate.py::test_a_killed_evaluation_resumes_at_the_first_unfinished_cell (an exception), ::test_changed_params_never_reuse_finished_cells; here ::test_evaluate_killed_by_sigkill_resumes_at_the_first_unfinished_cell (SIGKILL) |
| evaluate or train resumed after a code edit (item 1) | here ::test_evaluate_resumed_after_a_code_edit_reuses_no_cell (SIGKILL, then a module of the closure edited); test_fingerprint.py::test_closure_follows_every_project_import_and_names_the_others, ::test_the_resuming_stages_are_keyed_by_their_code_packages_and_numerics, ::test_a_checkpoint_of_other_code_is_never_resumed |
| DVC remote missing | here ::test_dvc_pull_from_a_missing_remote_names_the_file_and_creates_nothing, ::test_dvc_push_without_a_remote_says_so (``dvc push`` to a folder that does not exist yet creates it, which is not a fault) |
| DVC remote unreachable | here ::test_dvc_push_to_an_unreachable_remote_names_it_and_keeps_the_cache |
| no API key or token in any output, log or dvc.lock | e2e/test_pipeline.py::test_repro_rebuilds_identically_and_then_does_nothing (fake keys over a whole smoke run); test_translate.py::test_the_key_never_appears_in_outputs_logs_or_errors |
| models and adapters from safetensors only, trust_remote_code off | here ::test_every_model_load_is_safetensors_only_without_remote_code (every ``from_pretrained(`` under stages/), ::test_pickled_weights_are_refused_naming_the_folder, ::test_the_loader_reads_safetensors |
| this machine computes other float32 bits than the one that built the committed results (a rebuild would not match ``dvc.lock``) | test_numerics.py::test_this_machine_computes_the_committed_bits (as configured and as a larger machine; the message names both machines, or the package versions, and says to pull instead of rebuilding), ::test_a_mismatch_names_the_machine_or_the_versions_and_what_to_do |
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import evaluate, fetch, manifest, native, package, report, subset, train, translate, transpile
from tools.configure import render
from stages.lib.loading import UnsafeWeightsError, load_adapter, load_causal_lm
from stages.lib.params import load_params
from stages.lib.sources import SourceFile
from stages.lib.tables import read_jsonl, read_rows
from test_report import COND2, make_published
from test_report import run as run_report
from test_transpile_stage import run_cli
from test_translate import SECRET, build_sources, out_dir, write_params
from test_translate import run as run_translate
from tests.fake_llm import FakeLLM, items_of

ROOT = Path(__file__).resolve().parents[1]
MIB = 1_048_576


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every path under ``root`` with the sha256 of its bytes ('dir' for folders)."""
    return {
        str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.name not in skip
    }


def module(tag: str) -> str:
    """A small valid Python file whose 5-token shingles are its own (no near-duplicate of another tag)."""
    return "\n".join(f"def {tag}_step{i}({tag}_value):\n    return {tag}_value * {i} + len('{tag}{i}')\n" for i in range(6))


# --------------------------------------------------------------------------- corpus files


def source_file(index: int, path: str, data: bytes, repo: str = "octo/demo") -> SourceFile:
    return SourceFile(record_index=index, repo_name=repo, path=path, data=data,
                      license_fields={"detected_licenses": ["MIT"]}, stars=50)


def test_fetch_ledgers_every_bad_file_and_keeps_the_rest(tmp_path, monkeypatch):
    bad = {  # path -> (bytes, the ledger's reason)
        "pkg/latin1.py": (module("latin").encode() + b"\nname = '\xe9t\xe9'\n", "undecodable"),
        "pkg/blob.py": (module("blob").encode() + b"\x00\x01\x02", "binary"),
        "pkg/empty.py": (b"", "empty"),
        "pkg/huge.py": (b"x = 1\n" * (MIB // 6 + 1), "too_large"),
        "pkg/broken.py": (module("broken").encode() + b"\ndef broken(:\n", "failed_parse"),
    }
    hostile = {  # paths that try to leave the output folder, on files that are otherwise fine
        "../../../etc/cron.d/evil.py": "../../evil",
        "/etc/passwd.py": "octo/demo",
        "..\\..\\windows\\system.py": "octo/demo",
        "pkg/..": "..",
    }
    stream = [source_file(1, "src/good.py", module("good").encode())]
    stream += [source_file(i, path, data) for i, (path, (data, _)) in enumerate(bad.items(), start=2)]
    stream += [source_file(i, path, module(f"h{i}").encode(), repo) for i, (path, repo) in enumerate(hostile.items(), start=10)]
    monkeypatch.setattr(fetch, "iter_source", lambda key, source: iter(stream))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(render("smoke", "phase3")))
    out = tmp_path / "raw"
    assert fetch.main(["--source", "code", "--params", str(params), "--out", str(out), "--metrics", str(tmp_path / "m")]) == 0

    ledger = read_jsonl(out / "code" / "ledger.jsonl")
    assert {r["path"]: r["reason"] for r in ledger} == {path: reason for path, (_, reason) in bad.items()}
    assert all(r["repo_name"] == "octo/demo" and r["record_index"] > 1 for r in ledger)
    assert next(r for r in ledger if r["path"] == "pkg/huge.py")["detail"] == f"{6 * (MIB // 6 + 1)} bytes"
    assert "SyntaxError" in next(r for r in ledger if r["path"] == "pkg/broken.py")["detail"]

    pool = read_rows(out / "code" / "files.parquet")
    assert [r["path"] for r in pool] == ["src/good.py", *hostile]  # the good and hostile-named files are all kept
    stats = json.loads((tmp_path / "m" / "fetch-code.json").read_text())["fetch"]["code"]
    assert stats["processed"] == len(stream) and stats["accepted"] == len(pool)
    assert all(stats[reason] == 1 for _, reason in bad.values())
    target = out / "code"
    for r in pool:  # the identity is a plain basename: joined to any folder it stays in that folder
        assert re.fullmatch(r"\d{9}_[A-Za-z0-9][A-Za-z0-9._-]*_[0-9a-f]{12}\.py", r["file_path"]), r["file_path"]
        assert ".." not in r["file_path"] and (target / r["file_path"]).resolve().parent == target.resolve()
    manifest_rows = read_jsonl(out / "code" / "manifest.jsonl")
    assert [m["path"] for m in manifest_rows] == [r["path"] for r in pool]  # the raw path is kept as data only


@pytest.mark.parametrize("data, message", [
    (b"name = '\xe9t\xe9'\n", "<stdin>: undecodable: not UTF-8 (byte 0xe9 at offset 8)"),
    (b"x = 1\x00\n", "<stdin>: null_byte"),
])
def test_transpile_stdin_refuses_undecodable_and_binary_input(data, message):
    done = run_cli("--lang", "zh", "--stdin", stdin=data)
    assert done.returncode == 1 and done.stdout == b""
    assert message in done.stderr.decode() and b"Traceback" not in done.stderr


# --------------------------------------------------------------------------- params


def _add_run(data: dict, run_id: str) -> None:
    data["runs"][run_id] = next(iter(data["runs"].values()))


PARAMS_FAULTS = {
    "unknown key": (lambda d: d["subset"].update(sede=42), "subset.sede: Extra inputs are not permitted"),
    "wrong type": (lambda d: d["subset"].update(seed="42"), "subset.seed:"),
    "empty grid": (lambda d: d.update(grid=[]), "grid:"),
    "run id with a dot": (lambda d: _add_run(d, "condition-1-en-5k.seed42"), "condition-1-en-5k.seed42"),
    "run id with an at": (lambda d: _add_run(d, "condition-1@5k-seed42"), "condition-1@5k-seed42"),
    "language leaving data/": (lambda d: d["native"].update(lang="x/../../../t/native-escape"), "native.lang:"),
    "absolute grid dataset": (lambda d: d["grid"][0].update(dataset="/tmp/{lang}-{tier}"), "grid.0.dataset:"),
    "shell command in a tier key": (lambda d: d["subset"]["tiers"].update({"1k;touch PWNED;echo": 10}), "subset.tiers:"),
}
STAGE_COMMANDS = {  # each stage's dvc.yaml command, minus --params
    fetch: ["--source", "code"],
    subset: ["--tier", "5k"],
    transpile: ["--lang", "zh", "--tier", "5k"],
    native: [],
    translate: ["--lang", "ur", "--tier", "5k"],
    package: ["--dataset", "condition-2-zh-5k"],
    train: ["--run", "condition-2-zh-5k-seed42"],
    manifest: [],
    evaluate: ["--session", "baseline"],
    report: ["--out", "reports"],
}
EARLIER = {  # finished outputs of an earlier run, which a refused run must leave alone
    "data/raw/code/files.parquet": b"earlier pool",
    "data/condition-2-zh-5k/train-00000-of-00001.parquet": b"earlier condition 2",
    "models/tiny-aya-base/condition-2-zh-5k-seed42/adapter_model.safetensors": b"earlier adapter",
    "metrics/eval/phase3/conditions/baseline/seednone/baseline_seednone_results_template1.json": b"{}",
    "reports/metrics.json": b'{"earlier": true}',
    "logs/checkpoints/condition-2-zh-5k-seed42/0123456789abcdef/checkpoint-2/optimizer.pt": b"earlier checkpoint",
}


@pytest.mark.parametrize("fault", PARAMS_FAULTS)
def test_every_stage_refuses_bad_params_and_writes_nothing(fault, tmp_path, monkeypatch, capsys):
    data = render("smoke", "phase3")
    mutate, named = PARAMS_FAULTS[fault]
    mutate(data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    for path, content in EARLIER.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    before = tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    for stage, argv in STAGE_COMMANDS.items():
        code = stage.main([*argv, "--params", "params.yaml"])
        err = capsys.readouterr().err
        assert code != 0 and "params.yaml: " in err and named in err, (stage.__name__, err)
        assert tree(tmp_path) == before, stage.__name__


# --------------------------------------------------------------------------- results files


@pytest.mark.parametrize("damage", ["truncated", "malformed"])
def test_report_refuses_a_broken_results_file_and_keeps_the_last_report(damage, tmp_path, capsys):
    published = make_published(tmp_path / "p")
    bad = published / "phase3" / "conditions" / COND2 / "seed123" / f"{COND2}_seed123_results_template2.json"
    body = bad.read_bytes()
    bad.write_bytes(body[: len(body) // 2] if damage == "truncated" else body.replace(b'"summary"', b"'summary'", 1))
    out = tmp_path / "reports"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}')
    (out / "tables").mkdir()
    (out / "tables" / "t1-xnli.csv").write_text("earlier table")
    before = tree(out)
    assert run_report(published, out) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "malformed or truncated JSON" in err
    assert tree(out) == before


# --------------------------------------------------------------------------- translate


def test_translate_stopped_by_the_api_names_the_file_keeps_the_last_outputs_and_resumes(tmp_path, monkeypatch, capsys):
    marked = lambda record: any("FAILME" in item["text"] for item in items_of(record))  # noqa: E731
    with FakeLLM() as server:
        monkeypatch.setenv("COHERE_API_KEY", SECRET)
        cfg = {"backend": "cohere", "model": "c4ai-aya-expanse-32b", "base_url": server.url}
        build_sources(tmp_path, write_params(tmp_path, **cfg), langs=("ur",), marked={3})
        assert run_translate(tmp_path, "ur") == 0
        outputs = [out_dir(tmp_path, "ur"), tmp_path / "metrics" / "translate-ur-5k.json"]
        earlier = {p.name: tree(p) if p.is_dir() else p.read_bytes() for p in outputs}

        # other sampling params: every file is asked again, and the server keeps refusing train idx 3
        write_params(tmp_path, **cfg, sampling={"temperature": 0.5})
        server.rule = lambda record: "429" if marked(record) else None
        server.requests.clear()
        assert run_translate(tmp_path, "ur") == 4
        err = capsys.readouterr().err
        assert "1 files stopped" in err and "train idx 3 (000000003_repo_cache_000000000003.py): HTTP 429" in err
        assert "gave up after 4 retries" in err and SECRET not in err
        assert {p.name: tree(p) if p.is_dir() else p.read_bytes() for p in outputs} == earlier

        server.rule = lambda record: None
        server.requests.clear()
        assert run_translate(tmp_path, "ur") == 0
        assert server.requests and all(marked(r) for r in server.requests)  # only what failed is asked again
        ledger = read_jsonl(out_dir(tmp_path, "ur") / "ledger.jsonl")
        assert {r["status"] for r in ledger} == {"ok"} and len(ledger) == 10


# --------------------------------------------------------------------------- evaluate killed


class Canned:
    """A deterministic stand-in for the model; after ``die_after`` cells, it kills its own process (kill -9).

    A block of cells is generated at once (stages/lib/evaluation/blocks.py) and then each cell is scored
    (``choose``) and written, so ``calls`` counts cells scored and the kill comes between two cells."""

    def __init__(self, die_after: int | None = None):
        self.calls, self.die_after = 0, die_after

    def generate(self, prompts, max_new_tokens):
        return [("entailment", "neutral", "travel", "science/technology")[len(p) % 4] for p in prompts]

    def choose(self, prompts, choices):
        if self.calls == self.die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        self.calls += 1
        return [choices[len(p) % len(choices)] for p in prompts]


KILLED_SESSION = """
import os, signal, sys
from pathlib import Path
from stages.evaluate import evaluate_session
from stages.lib.params import load_params
{canned}
params, out, base, resume, die_after = sys.argv[1:]
timing = evaluate_session(load_params(params), "baseline", out=Path(out), base_dir=Path(base),
                          models_dir=Path(base).parent, resume_root=Path(resume), backend=Canned(int(die_after)),
                          progress=False)
print(timing["cells_run"])
"""


def four_cell_session(tmp_path: Path) -> tuple[Path, Path]:
    """params.yaml of a 4-cell baseline session and a stand-in base folder, under ``tmp_path``."""
    data = render("smoke", "phase3")
    data["evaluate"].update(benchmarks=["xnli", "sib200"], templates=["template1"], data_langs=["en"],
                            instr_langs=["en", "zh"], n_samples=2, batch_size=4,
                            fixtures_dir=str(ROOT / "fixtures" / "benchmarks"))
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(data, allow_unicode=True))
    base = tmp_path / "models" / "base"  # evaluate only hashes these when the backend is given
    base.mkdir(parents=True)
    (base / "model.safetensors").write_bytes(b"weights")
    (base / "tokenizer.json").write_text("{}")
    return params_path, base


def run_session(tmp_path: Path, code: Path, out: Path, die_after: int) -> subprocess.CompletedProcess:
    """The 4-cell session in a child process running the ``stages`` package under ``code``."""
    params_path, base = tmp_path / "params.yaml", tmp_path / "models" / "base"
    script = KILLED_SESSION.format(canned=inspect.getsource(Canned))
    return subprocess.run(
        [sys.executable, "-c", script, str(params_path), str(out), str(base), str(tmp_path / "resume"), str(die_after)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True)


def test_evaluate_killed_by_sigkill_resumes_at_the_first_unfinished_cell(tmp_path, monkeypatch, capsys):
    params_path, base = four_cell_session(tmp_path)
    monkeypatch.chdir(tmp_path)  # the session's timing log goes to ./logs
    killed_out, resume = tmp_path / "killed", tmp_path / "resume"
    done = run_session(tmp_path, ROOT, killed_out, 2)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert not killed_out.exists() and len(list(resume.rglob("*.json"))) == 2  # two cells were finished

    params = load_params(params_path)
    resumed = Canned()
    timing = evaluate.evaluate_session(params, "baseline", out=killed_out, base_dir=base, models_dir=base.parent,
                                       resume_root=resume, backend=resumed, progress=False)
    assert "resuming, 2 of 4 cells already done" in capsys.readouterr().err
    assert timing["cells_run"] == 2  # only the two missing cells are written again...
    assert resumed.calls == 4  # ...but their block (all 4 cells here) is generated and scored again whole
    whole = tmp_path / "whole"
    evaluate.evaluate_session(params, "baseline", out=whole, base_dir=base, models_dir=base.parent,
                              resume_root=tmp_path / "resume-whole", backend=Canned(), progress=False)
    assert tree(killed_out, skip=("provenance.json",)) == tree(whole, skip=("provenance.json",))
    assert not any(resume.rglob("*.json")), "the finished cells are removed once the session is written"


def test_evaluate_resumed_after_a_code_edit_reuses_no_cell(tmp_path):
    """Issue 23 item 1: the resume key covers the stage's code, not only params, weights and data."""
    four_cell_session(tmp_path)
    code = tmp_path / "code"  # a copy of the project's code, edited below as a developer would
    shutil.copytree(ROOT / "stages", code / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    out, resume = tmp_path / "out", tmp_path / "resume"
    assert run_session(tmp_path, code, out, 2).returncode == -signal.SIGKILL
    # the same code in a new process resumes (the key is stable); its block is scored again whole, so the
    # third cell is written after the two finished ones are scored again, and the kill comes before the fourth
    again = run_session(tmp_path, code, out, 3)
    assert again.returncode == -signal.SIGKILL and "resuming, 2 of 4 cells already done" in again.stderr
    assert len(list(resume.rglob("*.json"))) == 3

    results = code / "stages" / "lib" / "results.py"  # a module the stage imports (its own file: tests/test_fingerprint.py)
    results.write_text(results.read_text() + "\n# edited after the kill\n")
    done = run_session(tmp_path, code, out, 10**6)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" not in done.stderr and done.stdout.split() == ["4"]  # every cell scored by the new code
    assert not any(resume.rglob("*.json")), "the old code's cells are gone"


# --------------------------------------------------------------------------- the DVC remote


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """A real ``dvc`` command, with no user or system config that could name another remote."""
    isolated = {f"DVC_{name}": str(repo.parent / name.lower()) for name in ("GLOBAL_CONFIG_DIR", "SYSTEM_CONFIG_DIR", "SITE_CACHE_DIR")}
    env = {**os.environ, **isolated, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


@pytest.fixture
def dvc_clone(tmp_path: Path) -> Path:
    """A DVC repository (no git) with the project's own remote config: ``storage`` at ../dvc-storage, beside it."""
    repo = tmp_path / "clone"
    (repo / ".dvc").mkdir(parents=True)
    config = (ROOT / ".dvc" / "config").read_text().replace("[core]\n", "[core]\n    no_scm = True\n", 1)
    (repo / ".dvc" / "config").write_text(config)
    (repo / "adapter_model.safetensors").write_bytes(b"a finished adapter")
    added = dvc(repo, "add", "adapter_model.safetensors")
    assert added.returncode == 0, added.stderr
    return repo


def cached(repo: Path) -> dict[str, str]:
    return tree(repo / ".dvc" / "cache")


def test_dvc_pull_from_a_missing_remote_names_the_file_and_creates_nothing(dvc_clone):
    md5 = yaml.safe_load((dvc_clone / "adapter_model.safetensors.dvc").read_text())["outs"][0]["md5"]
    (dvc_clone / "adapter_model.safetensors").unlink()  # a fresh clone: the pointer, no data, no cache
    for path in sorted((dvc_clone / ".dvc" / "cache").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    pointer = (dvc_clone / "adapter_model.safetensors.dvc").read_bytes()
    done = dvc(dvc_clone, "pull")
    assert done.returncode != 0
    assert "failed to pull data from the cloud" in done.stderr and "adapter_model.safetensors" in done.stderr
    assert md5 in done.stderr
    assert not (dvc_clone / "adapter_model.safetensors").exists() and not (dvc_clone.parent / "dvc-storage").exists()
    assert (dvc_clone / "adapter_model.safetensors.dvc").read_bytes() == pointer


def test_dvc_push_to_an_unreachable_remote_names_it_and_keeps_the_cache(dvc_clone):
    storage = dvc_clone.parent / "dvc-storage"
    storage.write_text("a file where the remote folder should be")
    before = cached(dvc_clone)
    done = dvc(dvc_clone, "push")
    assert done.returncode != 0
    assert str(storage) in done.stderr and "Not a directory" in done.stderr
    assert cached(dvc_clone) == before and (dvc_clone / "adapter_model.safetensors").read_bytes() == b"a finished adapter"


def test_dvc_push_without_a_remote_says_so(dvc_clone):
    (dvc_clone / ".dvc" / "config").write_text("[core]\n    no_scm = True\n")
    before = cached(dvc_clone)
    done = dvc(dvc_clone, "push")
    assert done.returncode != 0 and f"no remote specified in {dvc_clone}" in done.stderr
    assert cached(dvc_clone) == before


# --------------------------------------------------------------------------- params edits under `dvc repro`


@pytest.fixture(scope="module")
def built_pipeline(tmp_path_factory) -> Path:
    """A DVC repository (no git) with the project's dvc.yaml, stages/ and smoke params.yaml, where
    ``validate_params`` and ``llink_data`` (the cheapest stage that reads params) are up to date."""
    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = True\n    analytics = false\n")
    shutil.copy2(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(yaml.safe_dump(render("smoke", "phase3"), allow_unicode=True, sort_keys=False))
    done = dvc(repo, "repro", "llink_data")
    assert done.returncode == 0, done.stderr[-2000:]
    return repo


SHELL = "1k;touch PWNED;echo"


def _shell_keys(data: dict) -> None:
    data["subset"]["tiers"][SHELL] = 10  # subset@<key> runs `python -m stages.subset --tier <key>`
    data["fetch"]["sources"][SHELL] = data["fetch"]["sources"]["code"]  # fetch@<key>, a stage with no other upstream


REPRO_EDITS = {  # edit, the `dvc repro` arguments, what the message must name
    "unknown key": (lambda d: d["subset"].update(sede=1), ["llink_data"], ["subset.sede: Extra inputs are not permitted"]),
    "misspelt key no stage lists": (lambda d: d["translate"].update(concurency=2), [],
                                    ["translate.concurency: Extra inputs are not permitted"]),
    "shell command in keys": (_shell_keys, [], [f"subset.tiers: Value error, tier {SHELL!r}", f"source id {SHELL!r}"]),
}


@pytest.mark.e2e
@pytest.mark.parametrize("fault", REPRO_EDITS)
def test_dvc_repro_stops_a_bad_params_edit_before_any_stage_command(fault, built_pipeline, tmp_path):
    """Issue 23 items 2 and 5: DVC tracks only the keys a stage lists ("Data and pipelines are up to date" after
    a typo) and runs each cmd, params interpolated, through a shell; validate_params reruns on any params.yaml
    edit, first, and stops the run naming the key before any other stage's command."""
    edit, targets, named = REPRO_EDITS[fault]
    repo = tmp_path / "repo"
    shutil.copytree(built_pipeline, repo)
    data = yaml.safe_load((repo / "params.yaml").read_text())
    edit(data)
    (repo / "params.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    done = dvc(repo, "repro", *targets)
    assert done.returncode != 0, done.stdout[-2000:]
    assert all(name in done.stderr for name in named) and "failed to reproduce 'validate_params'" in done.stderr, \
        done.stderr[-2000:]
    ran = [line for line in done.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'validate_params':"], ran  # no other stage's command ran
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()


# --------------------------------------------------------------------------- safetensors, no remote code


def required_kwargs(callee: str, file: str) -> dict[str, object]:
    """What a call must pass as literal keywords (a None value: the call must not be made here at all)."""
    if callee.endswith("from_pretrained"):
        if callee.startswith("PeftModel"):  # PEFT cannot be told to refuse pickles: only the checked helper may call it
            return {} if file == "stages/lib/loading.py" else {"stages.lib.loading.load_adapter": None}
        if "Tokenizer" in callee:
            return {"trust_remote_code": False}
        return {"trust_remote_code": False, "use_safetensors": True}
    if callee in ("LLM", "vllm.LLM"):
        return {"trust_remote_code": False, "load_format": "safetensors"}
    if callee == "torch.load":
        return {"weights_only": True}
    return {}


def unsafe_loads(root: Path) -> set[tuple[str, str, str, str]]:
    """(file, innermost function, callee, what is missing) for each load under ``root``/stages that breaks the rules."""
    found = set()

    class Visitor(ast.NodeVisitor):
        def __init__(self, file: str):
            self.file, self.where = file, ["<module>"]

        def visit_FunctionDef(self, node):
            self.where.append(node.name)
            self.generic_visit(node)
            self.where.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node):
            callee = ast.unparse(node.func)
            given = {k.arg: k.value.value for k in node.keywords if k.arg and isinstance(k.value, ast.Constant)}
            for key, value in required_kwargs(callee, self.file).items():
                if value is None or given.get(key, object()) != value:
                    found.add((self.file, self.where[-1], callee, key if value is None else f"{key}={value!r}"))
            self.generic_visit(node)

    for path in sorted((root / "stages").rglob("*.py")):
        file = path.relative_to(root).as_posix()
        Visitor(file).visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_every_model_load_is_safetensors_only_without_remote_code(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "x.py").write_text(
        "m = AutoModelForCausalLM.from_pretrained(p, trust_remote_code=True)\n"
        "def f():\n    return AutoTokenizer.from_pretrained(p), torch.load(p), PeftModel.from_pretrained(m, p)\n")
    assert unsafe_loads(tmp_path) == {
        ("stages/x.py", "<module>", "AutoModelForCausalLM.from_pretrained", "trust_remote_code=False"),
        ("stages/x.py", "<module>", "AutoModelForCausalLM.from_pretrained", "use_safetensors=True"),
        ("stages/x.py", "f", "AutoTokenizer.from_pretrained", "trust_remote_code=False"),
        ("stages/x.py", "f", "torch.load", "weights_only=True"),
        ("stages/x.py", "f", "PeftModel.from_pretrained", "stages.lib.loading.load_adapter"),
    }
    assert unsafe_loads(ROOT) == set(), "load models through stages/lib/loading.py"


def test_pickled_weights_are_refused_naming_the_folder(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:  # unpickling this would create the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "gpt2"}')
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UnsafeWeightsError, match=rf"{re.escape(str(model))}: no model.safetensors \(it holds only pytorch_model.bin\)"):
        load_causal_lm(model)
    adapter = tmp_path / "models" / "tiny-aya-base" / "run"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UnsafeWeightsError, match=rf"{re.escape(str(adapter))}: no adapter_model.safetensors"):
        load_adapter(object(), tmp_path / "models", "tiny-aya-base/run")
    with pytest.raises(UnsafeWeightsError, match="no such folder"):
        load_adapter(object(), tmp_path / "models", "tiny-aya-base/absent")
    with pytest.raises(UnsafeWeightsError, match="trust_remote_code=True is refused"):
        load_causal_lm(model, trust_remote_code=True)
    assert not marker.exists()


def test_the_loader_reads_safetensors(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "base")
    base = load_causal_lm(tmp_path / "base")
    assert base.config.n_embd == 8
    adapter = get_peft_model(GPT2LMHeadModel(config), LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    adapter.save_pretrained(tmp_path / "models" / "tiny-aya-base" / "run")
    assert "default" in load_adapter(base, tmp_path / "models", "tiny-aya-base/run").peft_config
