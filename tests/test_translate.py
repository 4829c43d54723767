"""translate (condition 5): segments, the prompt's answers, the cache, the backends through their real SDKs
against a local server (faults included), the allowlist, the ledger, and the key never leaking."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stages import transpile, translate
from tools.configure import render
from stages.lib.langpacks import load_pack
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_jsonl, read_provenance, read_rows, split_path, write_parquet
from stages.lib.transpiler import transpile as transpile_text
from stages.lib.translation import backends, prompt, segments
from stages.lib.translation.cache import ResponseCache, request_key
from stages.lib.translation.offline import OfflineBackend, translate_identifier
from tests.fake_llm import FakeLLM, items_of

SECRET = "sk-test-SECRET123"
TIER = "5k"

TEMPLATE = '''"""Load the {thing} file and return the values."""
import json


class {Thing}Loader(object):
    """A loader for {thing} files."""

    def __init__(self, file_path, mode="r"):
        self.file_path = file_path
        self.mode = mode

    def load_{thing}(self, name=None):
        # read the {thing} file and return the data
        with open(self.file_path, mode=self.mode) as handle:
            data = json.load(handle)
        if not data:
            raise ValueError("the {thing} file is empty: %s" % self.file_path)
        return data


def get_{thing}_value(key, values, default=None):
    for item in values:  # {marker}
        if item == key:
            return item
    return default
'''
THINGS = ["config", "data", "model", "cache", "table", "image", "queue", "token", "record", "group"]


def corpus(marked: set[int] = frozenset()) -> list[dict]:
    rows = []
    for i, thing in enumerate(THINGS):
        code = TEMPLATE.format(thing=thing, Thing=thing.title(), marker="FAILME please" if i in marked else "check each item")
        rows.append({"file_path": f"{i:09d}_repo_{thing}_{i:012x}.py", "code": code, "license": "MIT"})
    return rows


def build_sources(root: Path, params: Path, langs=("ur", "zh"), marked: set[int] = frozenset()) -> None:
    """Condition 1 (8 train / 2 validation) written directly, condition 2 through the transpile stage."""
    rows = corpus(marked)
    splits = {"train": rows[:8], "validation": rows[8:]}
    for split, chosen in splits.items():
        table = [{**row, "code_en": row["code"], "language": "en", "idx": idx} for idx, row in enumerate(chosen)]
        write_parquet(split_path(root / "data" / f"condition-1-en-{TIER}", split), table, CONDITION_SCHEMA)
    for lang in langs:
        args = ["--lang", lang, "--tier", TIER, "--params", str(params), "--data", str(root / "data"),
                "--metrics", str(root / "metrics"), "--workers", "1"]
        assert transpile.main(args) == 0


def write_params(root: Path, **translate_cfg) -> Path:
    """The smoke params with quick retries and ``translate_cfg`` over the translate section; a mapping
    (``sampling={"temperature": 0.5}``) updates that sub-section, whose other keys the profile keeps."""
    data = render("smoke", "phase3")
    section = data["translate"]
    section.update({"min_call_gap_s": 0.0, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 0.7, "max_retries": 4})
    for key, value in translate_cfg.items():
        section[key] = {**section[key], **value} if isinstance(value, dict) and isinstance(section.get(key), dict) else value
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run(root: Path, lang: str, params: Path | None = None) -> int:
    return translate.main([
        "--lang", lang, "--tier", TIER, "--params", str(params or root / "params.yaml"), "--data", str(root / "data"),
        "--metrics", str(root / "metrics"), "--cache", str(root / "data" / "translate-cache"), "--logs", str(root / "logs"),
    ])


def out_dir(root: Path, lang: str) -> Path:
    return root / "data" / f"condition-5-{lang}-{TIER}"


def digests(root: Path, lang: str) -> dict[str, str]:
    files = [split_path(out_dir(root, lang), s) for s in SPLITS] + [out_dir(root, lang) / "ledger.jsonl"]
    files.append(root / "metrics" / f"translate-{lang}-{TIER}.json")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def offline_root(tmp_path: Path) -> Path:
    params = write_params(tmp_path)
    build_sources(tmp_path, params)
    return tmp_path


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def cohere_root(tmp_path: Path, server: FakeLLM, monkeypatch) -> Path:
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    params = write_params(tmp_path, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url)
    build_sources(tmp_path, params)
    return tmp_path


# --------------------------------------------------------------------------- segments and answers


def test_segments_cover_names_comments_docstrings_strings_and_keep_foreign_names():
    pack = load_pack("phase3", "es")
    code = corpus()[0]["code"]
    plan = segments.plan(code, transpile_text(code, pack), pack)
    kinds = {(s.kind, s.text) for s in plan.segments}
    assert ("name", "file_path") in kinds and ("name", "load_config") in kinds and ("name", "ConfigLoader") in kinds
    assert ("comment", "read the config file and return the data") in kinds
    assert ("docstring", "A loader for config files.") in kinds
    assert ("string", "the config file is empty: %s") in kinds
    assert not {"json", "load", "self", "__init__"} & {s.text for s in plan.segments}  # imported, foreign, reserved, dunder
    answers = {s.id: OfflineBackend().complete(prompt.messages("es", [s])).text for s in plan.segments}
    answers = {k: json.loads(v)[k] for k, v in answers.items()}
    text, _ = segments.apply(plan, answers, pack)
    assert "json.load(" in text and "abrir(propio.archivo_ruta, mode=" in text  # open()'s keyword keeps its name
    assert "propio.modo = modo" in text and "definir cargar_configuración(propio, nombre=Ninguno)" in text
    assert segments.validate(plan, text, pack, "aware") == (None, "pass")


def test_answers_that_break_the_code_are_refused_and_fixed_where_possible():
    pack = load_pack("phase3", "ur")
    code = 'def f(x):\n    return "a few words: %s" % x\n'
    plan = segments.plan(code, transpile_text(code, pack), pack)
    string = next(s for s in plan.segments if s.kind == "string")
    name = next(s for s in plan.segments if s.kind == "name" and s.text == "x")
    assert "placeholders" in segments.check_answer(plan, string.id, "چند الفاظ")
    assert segments.check_answer(plan, string.id, 'a "quoted"\nline: %s') is None  # escaped into the literal
    assert "identifier" in segments.check_answer(plan, name.id, "۔۔۔")
    assert segments.check_answer(plan, name.id, "class") is not None
    answers = {s.id: s.text for s in plan.segments}
    answers[string.id] = 'a "quoted"\nline: %s'
    text, _ = segments.apply(plan, answers, pack)
    assert '"a \\"quoted\\"\\nline: %s"' in text and segments.validate(plan, text, pack, "aware")[1] == "pass"


def test_labeled_mapping_artefact_is_stripped():
    assert segments.strip_labeled_mappings("x = original_name_count_translated_name_گنتی + 1") == ("x = گنتی + 1", 1)


def test_skeleton_check_catches_a_changed_token():
    pack = load_pack("phase3", "zh")
    code = "def f(a, b):\n    return a + b  # add them\n"
    plan = segments.plan(code, transpile_text(code, pack), pack)
    broken = plan.text.replace("+", "-")
    problem, ast_result = segments.validate(plan, broken, pack, "aware")
    assert "untranslated token '+'" in problem and ast_result == "pass"


def test_prompt_chunks_and_parses_answers():
    chunk = [segments.Segment(str(i), "comment", "word " * 10) for i in range(1, 6)]
    assert [len(c) for c in prompt.chunks(chunk, 120, 60)] == [2, 2, 1]
    assert [len(c) for c in prompt.chunks(chunk, 10_000, 2)] == [2, 2, 1]
    assert prompt.parse_answer('```json\n{"1": "a", "2": "b"}\n```', chunk[:2]) == ({"1": "a", "2": "b"}, [])
    assert "cut off" in prompt.parse_answer('{"1": "a", "2', chunk[:2], "MAX_TOKENS")[1][0]
    assert "missing" in prompt.parse_answer('{"1": "a"}', chunk[:2])[1][0]
    retry = prompt.messages("ur", chunk[:1], 2, 2, ["the answer is not a JSON object"])
    assert "Attempt 2 of 2" in retry[1]["content"] and prompt.read_request(retry[1]["content"])["items"][0]["id"] == "1"


def test_offline_glossary_is_word_for_word_and_keeps_escapes_and_placeholders():
    assert translate_identifier("load_file", "es") == "cargar_archivo"
    assert translate_identifier("ConfigLoader", "zh") == "配置_Loader"
    message = OfflineBackend().complete(prompt.messages("es", [segments.Segment("1", "string", r"the file\n %(name)s {count}")]))
    assert json.loads(message.text) == {"1": r"el archivo\n %(name)s {count}"}


def test_cache_entries_are_atomic_files_keyed_by_the_whole_request(tmp_path):
    cache = ResponseCache(tmp_path)
    key = request_key("cohere", "m", {"temperature": 0.3}, [{"role": "user", "content": "x"}])
    assert key != request_key("cohere", "m", {"temperature": 0.4}, [{"role": "user", "content": "x"}])
    assert cache.get(key) is None
    cache.put(key, {"reply": {"text": "t", "finish_reason": "COMPLETE"}})
    assert cache.get(key)["reply"]["text"] == "t" and len(cache) == 1
    (cache.path(key).parent / "leftover.json.1.2.partial").write_text("{")
    cache.path(key).write_text("{half")  # a corrupt entry is a miss, never a crash
    assert cache.get(key) is None and cache.clean_partials() == 1


# --------------------------------------------------------------------------- the stage, offline


def test_offline_stage_same_files_as_condition_1_and_exact_rerun(offline_root):
    root = offline_root
    assert run(root, "ur") == 0 and run(root, "zh") == 0
    for split in SPLITS:
        source = read_rows(split_path(root / "data" / f"condition-1-en-{TIER}", split))
        shipped = read_rows(split_path(out_dir(root, "ur"), split))
        assert [(r["idx"], r["file_path"], r["code_en"]) for r in shipped] == [(r["idx"], r["file_path"], r["code"]) for r in source]
        assert all(r["language"] == "ur" and r["code"] != r["code_en"] for r in shipped)
    ledger = read_jsonl(out_dir(root, "ur") / "ledger.jsonl")
    assert len(ledger) == 10 and {r["status"] for r in ledger} == {"ok"} and all(r["translator"] == "offline-glossary" for r in ledger)
    assert all(r["ast"] == "pass" and r["skeleton"] == "pass" and r["attempts"] == 1 for r in ledger)
    footer = read_provenance(split_path(out_dir(root, "ur"), "train"))
    assert footer["translator"] == "offline-glossary" and footer["prompt"]["version"] == prompt.PROMPT_VERSION
    assert footer["prompt"]["system"] == prompt.SYSTEM_PROMPT and "glossary_sha256" in footer
    side = json.loads((out_dir(root, "ur") / "provenance.json").read_text())
    assert side["translator"] == "offline-glossary" and "git_sha" in side
    metrics = json.loads((root / "metrics" / f"translate-ur-{TIER}.json").read_text())["translate"][f"ur-{TIER}"]
    assert metrics["translator"] == "offline-glossary" and metrics["train"]["shipped"] == 8

    before = {lang: digests(root, lang) for lang in ("ur", "zh")}
    entries = len(ResponseCache(root / "data" / "translate-cache" / f"ur-{TIER}"))
    assert run(root, "ur") == 0 and run(root, "zh") == 0
    assert {lang: digests(root, lang) for lang in ("ur", "zh")} == before
    assert len(ResponseCache(root / "data" / "translate-cache" / f"ur-{TIER}")) == entries
    log = [json.loads(line) for line in (root / "logs" / f"translate-ur-{TIER}.jsonl").read_text().splitlines()[1:]]
    assert all(entry["cached"] and entry.get("calls", 0) == 0 for entry in log)


def test_keep_invalid_ships_what_fails_the_check(offline_root, monkeypatch):
    root = offline_root
    real = segments.validate

    def failing_for_idx_0(plan, text, pack, scope):
        return (None, "fail: injected at line 1") if "config" in plan.text else real(plan, text, pack, scope)

    monkeypatch.setattr(segments, "validate", failing_for_idx_0)
    assert run(root, "ur") == 0
    row = next(r for r in read_jsonl(out_dir(root, "ur") / "ledger.jsonl") if r["split"] == "train" and r["idx"] == 0)
    assert (row["status"], row["reason"], row["shipped"]) == ("failed", "invalid_translation", False)
    assert 0 not in {r["idx"] for r in read_rows(split_path(out_dir(root, "ur"), "train"))}
    write_params(root, keep_invalid=True)
    assert run(root, "ur") == 0
    row = next(r for r in read_jsonl(out_dir(root, "ur") / "ledger.jsonl") if r["split"] == "train" and r["idx"] == 0)
    assert (row["status"], row["shipped"]) == ("failed", True)
    assert 0 in {r["idx"] for r in read_rows(split_path(out_dir(root, "ur"), "train"))}


def test_constrained_language_needs_the_lead_first(offline_root, capsys):
    assert run(offline_root, "zh") == 2
    assert "translate ur first" in capsys.readouterr().err


# --------------------------------------------------------------------------- the real SDKs against the local server


def test_cohere_retries_transient_faults_then_a_rerun_makes_no_call(cohere_root, server):
    root = cohere_root
    server.faults = ["429", "500", "timeout", "bad_body"]
    assert run(root, "ur") == 0
    answered = len(server.requests) - 4
    assert answered == len(ResponseCache(root / "data" / "translate-cache" / f"ur-{TIER}")) > 0
    assert all(r["path"].endswith("/v2/chat") and r["auth"] == f"Bearer {SECRET}" for r in server.requests)
    assert {r["status"] for r in read_jsonl(out_dir(root, "ur") / "ledger.jsonl")} == {"ok"}
    first = digests(root, "ur")
    server.requests.clear()
    assert run(root, "ur") == 0
    assert server.requests == [] and digests(root, "ur") == first


def test_openai_backend_speaks_chat_completions(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "local-dummy")
    params = write_params(tmp_path, backend="openai", model="aya-expanse-32b", base_url=server.url + "/v1")
    build_sources(tmp_path, params, langs=("ur",))
    server.faults = ["429", "500"]
    assert run(tmp_path, "ur") == 0
    assert all(r["path"] == "/v1/chat/completions" for r in server.requests)
    assert server.requests[-1]["body"]["model"] == "aya-expanse-32b" and server.requests[-1]["body"]["temperature"] == 0.0
    assert len(read_rows(split_path(out_dir(tmp_path, "ur"), "train"))) == 8


@pytest.mark.parametrize("fault", ["not_json", "truncated"])
def test_unusable_answers_are_asked_again_then_recorded_as_failed(cohere_root, server, fault):
    server.rule = lambda request: fault
    write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url, min_success_rate=0.0)
    assert run(cohere_root, "ur") == 0
    ledger = read_jsonl(out_dir(cohere_root, "ur") / "ledger.jsonl")
    assert all((r["status"], r["attempts"], r["shipped"]) == ("failed", 2, False) for r in ledger)
    assert all(r["reason"].startswith("unusable_answer") for r in ledger)
    assert len(server.requests) == 2 * len(ledger)  # one chunk per file, two attempts each
    assert all(("Attempt 2 of 2" in r["messages"][-1]["content"]) == (i % 2 == 1) for i, r in enumerate(server.requests))
    assert read_rows(split_path(out_dir(cohere_root, "ur"), "train")) == []
    assert len(ResponseCache(cohere_root / "data" / "translate-cache" / f"ur-{TIER}")) == 0  # never replayed


def test_a_broken_server_fails_the_stage_then_a_fixed_one_is_asked_again(cohere_root, server, capsys):
    server.rule = lambda request: "not_json"  # e.g. base_url pointing at something that is not the model
    assert run(cohere_root, "ur") == 5
    err = capsys.readouterr().err
    assert "train: 0 of 8 attempted files got usable answers, below translate.min_success_rate 0.75" in err
    assert "unusable_answer 8" in err and "not a JSON object" in err
    assert not out_dir(cohere_root, "ur").exists()
    assert len(ResponseCache(cohere_root / "data" / "translate-cache" / f"ur-{TIER}")) == 0
    server.rule = lambda request: None
    server.requests.clear()
    assert run(cohere_root, "ur") == 0
    assert len(server.requests) == 10 and len(read_rows(split_path(out_dir(cohere_root, "ur"), "train"))) == 8


def test_the_cache_key_includes_the_endpoint(cohere_root, server):
    assert run(cohere_root, "ur") == 0
    with FakeLLM() as other:
        write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=other.url)
        assert run(cohere_root, "ur") == 0
        assert len(other.requests) == 10  # another server's answers are not the first one's
    entry = json.loads(next((cohere_root / "data" / "translate-cache" / f"ur-{TIER}").glob("*/*.json")).read_text())
    assert entry["endpoint"] in (server.url, other.url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def counting(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Count the Cohere backend's calls; after ``fail_after`` of them, every call is refused as a dead server's."""
    calls, real = [], backends.CohereBackend.complete

    def complete(self, messages):
        calls.append(1)
        if fail_after is not None and len(calls) > fail_after:
            raise backends.BackendError("ConnectError: [Errno 111] Connection refused", transient=True, connection=True)
        return real(self, messages)

    monkeypatch.setattr(backends.CohereBackend, "complete", complete)
    return calls


def test_a_server_that_is_down_stops_the_stage_after_a_few_connection_failures(cohere_root, monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=url, max_connection_failures=3)
    calls = counting(monkeypatch)
    started = time.monotonic()
    assert run(cohere_root, "ur") == 4
    assert len(calls) == 3 and time.monotonic() - started < 5  # not 10 files x 5 tries
    err = capsys.readouterr().err
    assert f"3 connection failures in a row to {url}" in err and "ConnectError" in err and "max_connection_failures" in err
    assert len(err.strip().splitlines()) == 1


def test_the_breaker_keeps_every_answer_received_before_it(cohere_root, server, monkeypatch, capsys):
    write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url, max_connection_failures=3)
    calls = counting(monkeypatch, fail_after=4)
    assert run(cohere_root, "ur") == 4 and len(calls) == 4 + 3
    assert "3 connection failures in a row" in capsys.readouterr().err
    assert len(ResponseCache(cohere_root / "data" / "translate-cache" / f"ur-{TIER}")) == 4
    monkeypatch.undo()
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    server.requests.clear()
    assert run(cohere_root, "ur") == 0 and len(server.requests) == 10 - 4


def test_credentials_in_base_url_or_echoed_by_the_server_are_never_stored(cohere_root, server, capfd):
    server.rule = lambda request: "echo_auth"  # every reply starts with the request's authorization header
    assert run(cohere_root, "ur") == 0  # the key, as a Bearer header
    url = server.url.replace("http://", "http://reader:hunter2pw@")
    write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=url)
    assert run(cohere_root, "ur") == 0  # another endpoint: asked again, with the URL's Basic credentials
    basic = base64.b64encode(b"reader:hunter2pw")
    assert {r["auth"] for r in server.requests} == {f"Bearer {SECRET}", f"Basic {basic.decode()}"}
    provenance = json.loads((out_dir(cohere_root, "ur") / "provenance.json").read_text())
    assert provenance["operational"]["base_url"] == server.url.replace("http://", "http://***@")
    entries = [json.loads(p.read_text()) for p in (cohere_root / "data" / "translate-cache").rglob("*.json")]
    assert len(entries) == 20 and all(e["reply"]["text"].startswith("(you sent ") for e in entries)
    captured = capfd.readouterr()
    for path in [p for p in cohere_root.rglob("*") if p.is_file() and p.name != "params.yaml"]:
        data = path.read_bytes()
        assert b"hunter2pw" not in data and basic not in data and SECRET.encode() not in data, path
    assert "hunter2pw" not in captured.out + captured.err


class Echo:
    """A backend whose replies repeat its credentials around ordinary code."""

    name, model = "openai", "m"

    def __init__(self, secrets):
        self.secrets = secrets

    def complete(self, messages):
        return backends.Reply(f"x = 1  # {' '.join(self.secrets)}", "stop")


def test_replies_lose_real_credentials_but_no_ordinary_words(tmp_path):
    from stages.lib.params import Translate

    cfg = Translate.model_validate(render("smoke", "phase3")["translate"])
    long_key = Echo(("sk-long-enough-key", *backends.url_secrets("http://reader:hunter2pw@h")))
    reply = backends.Caller(long_key, cfg, ResponseCache(tmp_path / "a")).ask([{"role": "user", "content": "q"}]).reply
    assert reply.text == "x = 1  # " + " ".join(["***"] * len(long_key.secrets))
    short_key = Echo(("x",))  # OPENAI_API_KEY=x for a local server: every x of the code must stay
    assert backends.Caller(short_key, cfg, ResponseCache(tmp_path / "b")).ask([]).reply.text == "x = 1  # x"


def test_a_missing_sdk_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    monkeypatch.setitem(sys.modules, "cohere", None)  # import cohere raises ImportError
    write_params(tmp_path, backend="cohere", model="m")
    assert run(tmp_path, "ur") == 2
    err = capsys.readouterr().err
    assert "needs the cohere SDK" in err and ".[translate]" in err and len(err.strip().splitlines()) == 1


def test_persistent_server_errors_stop_the_stage_after_bounded_retries(cohere_root, server, capsys):
    server.rule = lambda request: "500"
    assert run(cohere_root, "ur") == 4
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "gave up after 4 retries" in err and "running the stage again resumes" in err
    assert len(server.requests) == 10 * 5  # every file: one call and four retries, never more
    assert not split_path(out_dir(cohere_root, "ur"), "train").exists()


def test_artefact_from_the_model_is_stripped(cohere_root, server):
    server.rule = lambda request: "labeled"
    assert run(cohere_root, "ur") == 0
    ledger = read_jsonl(out_dir(cohere_root, "ur") / "ledger.jsonl")
    assert all(r["status"] == "ok" and r["stripped_labeled_mappings"] > 0 for r in ledger)
    assert not any("original_name_" in r["code"] for r in read_rows(split_path(out_dir(cohere_root, "ur"), "train")))


def test_allowlist_limits_zh_to_the_idx_ur_shipped(tmp_path, server, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    params = write_params(tmp_path, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url, min_success_rate=0.5)
    build_sources(tmp_path, params, marked={1, 4, 9})  # train idx 1 and 4, validation idx 1
    marked = lambda record: any("FAILME" in item["text"] for item in items_of(record))
    server.rule = lambda record: "not_json" if marked(record) else None
    assert run(tmp_path, "ur") == 0
    ur = read_jsonl(out_dir(tmp_path, "ur") / "ledger.jsonl")
    assert {(r["split"], r["idx"]) for r in ur if r["status"] == "failed"} == {("train", 1), ("train", 4), ("validation", 1)}
    server.requests.clear()
    assert run(tmp_path, "zh") == 0
    zh = read_jsonl(out_dir(tmp_path, "zh") / "ledger.jsonl")
    shipped_ur = {(r["split"], r["idx"]) for r in ur if r["shipped"]}
    assert {(r["split"], r["idx"]) for r in zh if r["status"] != "not_in_allowlist"} == shipped_ur
    assert {(r["split"], r["idx"]) for r in zh if r["status"] == "not_in_allowlist"} == {("train", 1), ("train", 4), ("validation", 1)}
    assert server.requests and not any(marked(r) for r in server.requests)  # never asked for


@pytest.mark.parametrize("backend,env", [("cohere", "COHERE_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_missing_key_names_the_variable(tmp_path, monkeypatch, capsys, backend, env):
    monkeypatch.delenv(env, raising=False)
    write_params(tmp_path, backend=backend, model="m")
    assert run(tmp_path, "ur") == 2
    err = capsys.readouterr().err
    assert env in err and "environment" in err


def test_the_key_never_appears_in_outputs_logs_or_errors(cohere_root, server, capfd):
    assert run(cohere_root, "ur") == 0
    server.faults = ["401"]  # a server that echoes the key in its error body
    write_params(cohere_root, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url, sampling={"temperature": 0.5})
    assert run(cohere_root, "ur") == 3
    captured = capfd.readouterr()
    assert "rejected the API key" in captured.err
    assert "SECRET123" not in captured.out + captured.err
    for path in cohere_root.rglob("*"):
        if path.is_file():
            assert b"SECRET123" not in path.read_bytes(), path


def test_the_docs_say_dvc_removes_a_failed_runs_outputs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for text in (translate.__doc__, readme):  # not "the previous outputs stay": under dvc repro they are gone
        assert "dvc checkout" in " ".join(text.split()) and "removed" in text


# --------------------------------------------------------------------------- kill -9


def test_kill_mid_run_loses_nothing_and_pays_nothing_twice(tmp_path, monkeypatch):
    with FakeLLM(delay=0.15) as server:
        monkeypatch.setenv("COHERE_API_KEY", SECRET)
        params = write_params(tmp_path, backend="cohere", model="c4ai-aya-expanse-32b", base_url=server.url,
                              chunk_segments=3, timeout_s=5.0)
        build_sources(tmp_path, params, langs=("ur",))
        cache_dir = tmp_path / "data" / "translate-cache" / f"ur-{TIER}"
        command = [sys.executable, "-m", "stages.translate", "--lang", "ur", "--tier", TIER, "--params", str(params),
                   "--data", str(tmp_path / "data"), "--metrics", str(tmp_path / "metrics"),
                   "--cache", str(tmp_path / "data" / "translate-cache"), "--logs", str(tmp_path / "logs")]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        child = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while len(ResponseCache(cache_dir)) < 4 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        cached = [json.loads(p.read_text()) for p in sorted(cache_dir.glob("*/*.json"))]
        assert len(cached) >= 4 and not split_path(out_dir(tmp_path, "ur"), "train").exists()
        first_run = len(server.requests)
        assert run(tmp_path, "ur") == 0
        again = [r["messages"] for r in server.requests[first_run:]]
        assert again and not any(entry["messages"] in again for entry in cached)
        assert {r["status"] for r in read_jsonl(out_dir(tmp_path, "ur") / "ledger.jsonl")} == {"ok"}
