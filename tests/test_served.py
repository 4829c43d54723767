"""evaluate through a served model: the ``served`` backend against real servers on 127.0.0.1.

Two servers, both started and stopped here:

- ``transformers serve`` (transformers 5.17's OpenAI-compatible server), serving the tiny base and the
  adapter merged into it (it loads a model folder by path, not a PEFT adapter). Its ``/v1/completions``
  takes text prompts only and answers no log-probabilities (``echo``/``logprobs`` are ignored,
  ``prompt_logprobs`` refused: transformers/cli/serving/completion.py), so it checks generation.
- ``VLLMFormatServer`` below: a small HTTP server speaking vLLM 0.32's completions format (token-id
  prompts, ``prompt_logprobs``, ``echo`` + ``logprobs``, LoRA adapters by model name, 404 for a model
  it does not serve), every number computed by the real tiny model and adapter, nothing canned. It
  stands in for ``vllm serve``, which needs a GPU, for the parts ``transformers serve`` lacks.

Each served session's published files must equal the ``hf`` backend's byte for byte.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from stages import evaluate as ev
from stages.base import build_model
from stages.lib.params import ParamsError, parse_params
from stages.lib.served import ServedError
from test_evaluate import RUN, params_for, random_base, record_trained

CONFIG = {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}
SECRET = "sk-served-test-0123456789"


# --------------------------------------------------------------------------- the models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, request):
    """A tiny random base, one adapter in the seed card's layout, and that adapter merged into the base."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    repo_root = request.config.rootpath
    root = tmp_path_factory.mktemp("served")
    tokenizer = random_base(root, grid(repo_root), repo_root, CONFIG)
    base_dir = root / "models" / "base"
    torch.manual_seed(1)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(build_model(CONFIG, len(tokenizer), 3, tokenizer), lora).save_pretrained(
        root / "models" / "tiny-aya-base" / RUN)
    record_trained(root, RUN)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir),
                                       root / "models" / "tiny-aya-base" / RUN).merge_and_unload()
    merged.save_pretrained(root / "merged" / RUN)
    tokenizer.save_pretrained(root / "merged" / RUN)
    return root


def grid(repo_root, **evaluate):
    """A small grid: one template, English data, instructions en/ur, XNLI and SIB-200, three examples."""
    return params_for(repo_root, templates=["template1"], data_langs=["en"], instr_langs=["en", "ur"], **evaluate)


def with_served(params, **served):
    data = params.model_dump(mode="json")
    data["evaluate"]["backend"] = "served"
    data["evaluate"]["served"].update(served)
    return parse_params(data)


def evaluate(tiny, params, session, name):
    out = tiny / "out" / name
    ev.evaluate_session(params, session, out=out, base_dir=tiny / "models" / "base", models_dir=tiny / "models",
                        resume_root=tiny / "resume", progress=False)
    return out


@pytest.fixture(scope="module")
def hf_outputs(tiny, request):
    """The hf backend's outputs (with log-likelihood) for the baseline and the adapter session."""
    repo_root = request.config.rootpath
    return {session: evaluate(tiny, grid(repo_root), session, f"hf-{session}") for session in ("baseline", RUN)}


def assert_same_outputs(served_out: Path, hf_out: Path, loglik: bool = True) -> None:
    """Every file the served session wrote equals the hf backend's (log-likelihood summaries where asked)."""
    names = sorted(p.name for p in served_out.iterdir() if p.name not in ("eval_config.json", "provenance.json"))
    assert names == sorted(p.name for p in hf_out.iterdir() if p.name not in ("eval_config.json", "provenance.json")
                           and (loglik or "_summary_loglik_" not in p.name))
    assert any("_summary_loglik_" in name for name in names) == loglik
    for name in names:
        assert (served_out / name).read_bytes() == (hf_out / name).read_bytes(), name
    served_config = json.loads((served_out / "eval_config.json").read_text())
    hf_config = json.loads((hf_out / "eval_config.json").read_text())
    assert "served" not in hf_config["params"]  # the hf outputs' bytes do not change with the new backend
    assert served_config["params"]["backend"] == "served" and "url" not in served_config["params"]["served"]


def raw_outputs(out: Path) -> list[str]:
    (results_file,) = out.glob("*_results_*")
    body = json.loads(results_file.read_text())
    return [row["raw_output"] for key, rows in body.items() if key != "summary" and isinstance(rows, list) for row in rows]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- transformers serve


class TransformersServe:
    """``transformers serve`` on a free port of 127.0.0.1; ``url()`` waits until it answers."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "w")
        command = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1", "--port",
                   str(self.port), "--device", "cpu", "--log-level", "warning"]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def url(self) -> str:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return f"http://127.0.0.1:{self.port}/v1"
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not start: {self.log_path.read_text()}") from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def transformers_serve(tiny):
    """Started before the hf outputs are computed, so that its start-up overlaps them."""
    server = TransformersServe(tiny / "transformers-serve.log")
    yield server
    server.stop()


def test_transformers_serve_generates_what_the_hf_backend_does(tiny, transformers_serve, hf_outputs, repo_root):
    """The base, and the adapter (merged: transformers serve loads no PEFT folder), by model name."""
    served = with_served(grid(repo_root, loglik=False), url=transformers_serve.url(), prompt="text",
                         base_model=str(tiny / "models" / "base"), adapter_model=str(tiny / "merged" / "{session}"),
                         concurrency=3)
    for session in ("baseline", RUN):
        served_out = evaluate(tiny, served, session, f"transformers-serve-{session}")
        assert_same_outputs(served_out, hf_outputs[session], loglik=False)
        assert any(raw_outputs(served_out)), "the random model says something"
    assert raw_outputs(hf_outputs["baseline"]) != raw_outputs(hf_outputs[RUN])  # the adapter counts


def test_a_text_server_that_tokenises_otherwise_is_refused(tiny, transformers_serve, repo_root):
    """Prompts truncated at max_length here are read whole by a text-only server: the token counts differ."""
    params = with_served(grid(repo_root, loglik=False, max_length=8), url=transformers_serve.url(), prompt="text",
                         base_model=str(tiny / "models" / "base"))
    with pytest.raises(ServedError, match=r"read a prompt as \d+ tokens where this run's tokenizer .* makes 8"):
        evaluate(tiny, params, "baseline", "truncated")


def test_missing_capabilities_of_transformers_serve_are_named(tiny, transformers_serve, repo_root):
    base, url = str(tiny / "models" / "base"), transformers_serve.url()
    token_ids = with_served(grid(repo_root, loglik=False), url=url, base_model=base)
    with pytest.raises(ServedError, match="takes no token-id prompts.*prompt: text") as error:
        evaluate(tiny, token_ids, "baseline", "ids")
    assert url in str(error.value) and base in str(error.value)
    text_loglik = with_served(grid(repo_root), url=url, prompt="text", base_model=base)
    with pytest.raises(ServedError, match="evaluate.loglik scores token ids"):
        evaluate(tiny, text_loglik, "baseline", "text-loglik")


# --------------------------------------------------------------------------- vLLM's format


class VLLMFormatServer(ThreadingHTTPServer):
    """vLLM 0.32's /v1/completions and /v1/models over the real tiny model and adapter.

    ``models``: served name -> model (the base, or a PeftModel: the adapter by name, as
    ``--lora-modules name=path``). ``fail_first``: answer that many requests 503 (a server busy
    starting). ``api_key``: the Bearer token it demands. ``prompt_logprobs``: False answers as a
    server without them does (the field left out), to check that its absence is named."""

    def __init__(self, models: dict, tokenizer, api_key: str | None = None, fail_first: int = 0,
                 prompt_logprobs: bool = True):
        super().__init__(("127.0.0.1", 0), VLLMFormatHandler)
        self.models, self.tokenizer, self.api_key = models, tokenizer, api_key
        self.fail_first, self.prompt_logprobs = fail_first, prompt_logprobs
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.headers_seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def complete(self, body: dict) -> tuple[int, dict]:
        model = self.models.get(body.get("model"))
        if model is None:
            return 404, error_body(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404)
        ids = body.get("prompt")
        if not (isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)):
            return 400, error_body("this server takes token-id prompts only", "BadRequestError", 400)
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
            if body.get("max_tokens", 16) == 1:  # greedy's one token is the prompt's last argmax
                new, steps = [int(logprobs[-1].argmax())], [logprobs[-1]]
            else:
                generated = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                           max_new_tokens=body.get("max_tokens", 16), do_sample=False,
                                           pad_token_id=self.tokenizer.eos_token_id, output_logits=True,
                                           return_dict_in_generate=True)
                new = generated.sequences[0, len(ids):].tolist()
                steps = [torch.log_softmax(step[0].float(), -1) for step in generated.logits]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None,
                  "token_ids": None, "prompt_logprobs": None, "prompt_token_ids": None}
        # vLLM: position 0 has none; each later one the prompt's own token (and the top k, when k > 0)
        prompt_logprobs = [None] + [self.top(logprobs[i - 1], ids[i], body.get("prompt_logprobs") or 0)
                                    for i in range(1, len(ids))]
        if body.get("prompt_logprobs") is not None and self.prompt_logprobs:
            choice["prompt_logprobs"] = prompt_logprobs
        if body.get("echo"):
            choice["text"] = self.tokenizer.decode(ids) + text
            if body.get("logprobs") is not None:
                values = [None] + [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]
                values += [float(step[token]) for step, token in zip(steps, new)]
                tokens = [self.tokenizer.decode([t]) for t in ids + new]
                choice["logprobs"] = {"text_offset": [sum(map(len, tokens[:i])) for i in range(len(tokens))],
                                      "token_logprobs": values, "tokens": tokens,
                                      "top_logprobs": [None] + [{t: v} for t, v in zip(tokens[1:], values[1:])]}
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(new), "total_tokens": len(ids) + len(new)}
        return 200, {"id": "cmpl-test", "object": "text_completion", "created": 0, "model": body["model"],
                     "choices": [choice], "usage": usage}

    def top(self, logprobs, token: int, k: int) -> dict:
        ranked = torch.argsort(logprobs, descending=True).tolist()
        entries = {t: logprobs[t] for t in ranked[:k]} | {token: logprobs[token]}
        return {str(t): {"logprob": float(v), "rank": ranked.index(t) + 1, "decoded_token": self.tokenizer.decode([t])}
                for t, v in entries.items()}


def error_body(message: str, kind: str, code: int) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class VLLMFormatHandler(BaseHTTPRequestHandler):
    server: VLLMFormatServer

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self) -> bool:
        self.server.headers_seen.append(self.headers.get("Authorization", ""))
        if self.server.api_key and self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            self.reply(401, error_body("Unauthorized", "Unauthorized", 401))
            return False
        return True

    def do_GET(self):
        if self.authorised() and self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in self.server.models]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(body)
            busy = self.server.fail_first > 0
            self.server.fail_first -= busy
        if busy:
            return self.reply(503, error_body("starting up", "ServiceUnavailable", 503))
        if not self.authorised():
            return
        with self.server.lock:  # one forward at a time, as one engine would run them
            status, answer = self.server.complete(body)
        self.reply(status, answer)


@pytest.fixture
def vllm_format(tiny):
    """Start one VLLMFormatServer over the base and the adapter; stopped when the test ends."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny / "models" / "base")
    base = AutoModelForCausalLM.from_pretrained(tiny / "models" / "base").eval()
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny / "models" / "base"),
                                        tiny / "models" / "tiny-aya-base" / RUN).eval()
    started = []

    def start(**options) -> VLLMFormatServer:
        server = VLLMFormatServer({"models/base": base, RUN: adapter}, tokenizer, **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_token_ids_prompt_logprobs_and_adapters_by_name_equal_the_hf_backend(tiny, hf_outputs, vllm_format, repo_root,
                                                                             monkeypatch):
    """Generation and log-likelihood picks, for the base and for the adapter named as --lora-modules names it,
    with 8 requests in flight and with 1 (the same bytes); an API key from the environment reaches the server
    and nothing else; 503s while it starts are retried."""
    monkeypatch.setenv("SERVED_API_KEY", SECRET)
    server = vllm_format(api_key=SECRET, fail_first=2)
    runs = (("baseline", {"concurrency": 8}), (RUN, {"concurrency": 8}), (RUN, {"concurrency": 1, "loglik_via": "echo"}))
    for index, (session, how) in enumerate(runs):
        served_out = evaluate(tiny, with_served(grid(repo_root), url=server.url, backoff_s=0.01, **how), session,
                              f"vllm-format-{index}")
        assert_same_outputs(served_out, hf_outputs[session])
        for path in served_out.iterdir():
            assert SECRET not in path.read_text()
    assert {body["model"] for body in server.requests} == {"models/base", RUN}
    assert all(isinstance(body["prompt"], list) for body in server.requests)
    assert any("prompt_logprobs" in body for body in server.requests) and any(body.get("echo") for body in server.requests)
    assert set(server.headers_seen) == {f"Bearer {SECRET}"}


def test_errors_name_the_url_and_the_model(tiny, vllm_format, repo_root, monkeypatch):
    server = vllm_format(api_key=SECRET)
    params = grid(repo_root)
    monkeypatch.setenv("SERVED_API_KEY", "wrong-key")
    with pytest.raises(ServedError, match="refused the request.*environment variable SERVED_API_KEY") as refused:
        evaluate(tiny, with_served(params, url=server.url), "baseline", "refused")
    assert "wrong-key" not in str(refused.value)

    monkeypatch.setenv("SERVED_API_KEY", SECRET)
    with pytest.raises(ServedError, match=r"'condition-9'.*does not serve this model .*it serves: models/base, " + RUN):
        evaluate(tiny, with_served(params, url=server.url, adapter_model="condition-9"), RUN, "unknown-model")

    no_logprobs = vllm_format(prompt_logprobs=False)
    with pytest.raises(ServedError, match="no prompt_logprobs .*missing capability"):
        evaluate(tiny, with_served(params, url=no_logprobs.url), "baseline", "no-logprobs")

    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServedError, match=f"cannot reach the server at {closed} .*after 2 tries"):
        evaluate(tiny, with_served(params, url=closed, retries=1, backoff_s=0.01), "baseline", "unreachable")


def test_served_params_are_checked(repo_root):
    params = grid(repo_root)
    for bad, match in ((dict(url="127.0.0.1:8000"), "must be an http"), (dict(adapter_model="{run}"), "only {session}"),
                       (dict(prompt="ids"), "prompt"), (dict(api_key="x"), "api_key")):
        with pytest.raises(ParamsError, match=match):
            with_served(params, **bad)
    assert with_served(params, url="http://gpu-box:8000/v1/").evaluate.served.url == "http://gpu-box:8000/v1"
