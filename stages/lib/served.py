"""A model behind an OpenAI-compatible server (vLLM, SGLang, ``transformers serve``) as an evaluation backend.

``evaluate.backend: served`` (params ``evaluate.served``) sends every prompt of a cell to
``<url>/completions`` and never loads a model in this process, so vLLM's own torch and numpy stay
in vLLM's environment. A session's model is selected by name: the base as ``base_model``, an
adapter as ``adapter_model`` (``vllm serve <base> --enable-lora --lora-modules <name>=<folder>``
serves each adapter under its own name).

What each request asks for (field names as vLLM 0.32's ``CompletionRequest`` and
``CompletionResponseChoice`` spell them, entrypoints/openai/completion/protocol.py):

- generation: ``prompt`` = this run's token ids (``prompt: token_ids``; the base tokenizer,
  special tokens added, right-truncated at ``max_length``, exactly as the ``hf`` backend feeds
  its model) or the prompt text (``prompt: text``, for servers that tokenise themselves, such as
  ``transformers serve``: then the server's ``usage.prompt_tokens`` must equal this run's count,
  which catches both a different tokenizer and a prompt that would have been truncated),
  ``max_tokens``, ``temperature: 0`` (greedy). The answer is the choice's ``text`` (the server
  decodes with ``skip_special_tokens``, as the ``hf`` backend does), stripped.
- log-likelihood (``loglik_via``): ``prompt_logprobs: 0`` (vLLM: per prompt position a
  ``{token id: {"logprob": ...}}`` holding the prompt's own token, ``None`` at position 0), or
  OpenAI's ``echo: true`` + ``logprobs: 0`` (``logprobs.token_logprobs`` over the prompt's tokens,
  then the generated one). Either way the context + continuation ids go as one prompt and the
  continuation's positions are summed.

Every request is one prompt, and answers are put back in the prompts' order, so the results do
not depend on ``concurrency`` (how many requests are in flight). Whether the server's numbers
depend on its own batching is the server's matter: vLLM's batched kernels are not batch-invariant
unless asked to be (README "Evaluation through a served model").

Failures: no connection, 429 and 502-504 are retried ``retries`` times, waiting ``backoff_s``
doubled each time; anything else stops with a message naming the URL, the model and the server's
own words. The API key is read from the environment variable ``api_key_env`` only and appears in
no message, log or output.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from stages.lib.errors import StageError
from stages.lib.params import Served

TRANSIENT_STATUS = (429, 502, 503, 504)


class ServedError(StageError, ValueError):
    """The server cannot do what evaluation needs; the message names the URL and the model."""


class Unreachable(ServedError):
    """No answer from the server after every retry."""


class HTTPFailure(ServedError):
    def __init__(self, message: str, status: int, detail: str):
        super().__init__(message)
        self.status = status
        self.detail = detail


def _detail(body: bytes) -> str:
    """The server's own words: OpenAI/vLLM ``{"error": {"message"}}``, FastAPI ``{"detail"}``, or the text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "detail" in data:
            return str(data["detail"])
        if "message" in data:
            return str(data["message"])
    return text[:500]


class Server:
    """JSON over HTTP to one OpenAI-compatible base URL, with retries for transient failures."""

    def __init__(self, served: Served, sleep: Callable[[float], None] = time.sleep):
        self.served = served
        self.url = served.url
        self.sleep = sleep

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.served.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request(self, path: str, body: dict | None = None) -> dict:
        """GET (no body) or POST ``body`` to ``<url><path>``; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        tries = self.served.retries + 1
        for attempt in range(tries):
            request = urllib.request.Request(self.url + path, data=data, headers=self._headers(),
                                             method="GET" if body is None else "POST")
            try:
                with urllib.request.urlopen(request, timeout=self.served.timeout_s) as response:
                    payload = response.read()
            except urllib.error.HTTPError as error:
                detail = _detail(error.read())
                if error.code in TRANSIENT_STATUS and attempt + 1 < tries:
                    self.sleep(self.served.backoff_s * 2**attempt)
                    continue
                raise HTTPFailure(f"{self.url}{path}: HTTP {error.code}: {detail}", error.code, detail) from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException, socket.timeout, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                if attempt + 1 < tries:
                    self.sleep(self.served.backoff_s * 2**attempt)
                    continue
                raise Unreachable(
                    f"cannot reach the server at {self.url} ({path}) after {tries} tries: {reason}; is it running "
                    f"(README: Evaluation through a served model) and is evaluate.served.url right?"
                ) from None
            try:
                return json.loads(payload)
            except json.JSONDecodeError:
                raise ServedError(f"{self.url}{path}: the answer is not JSON: {payload[:200]!r}") from None
        raise AssertionError("unreachable")

    def model_ids(self) -> list[str] | None:
        """What ``/models`` lists (vLLM: the base and every LoRA module), or None where the server cannot say."""
        try:
            listed = self.request("/models")
        except HTTPFailure:
            return None  # transformers serve lists its Hub cache, and fails where there is none
        return [str(entry.get("id")) for entry in listed.get("data", []) if isinstance(entry, dict)]


class ServedModel:
    """One model name on one server: greedy generation and summed log-probabilities, in order."""

    def __init__(self, served: Served, model: str, server: Server | None = None):
        self.served = served
        self.model = model
        self.server = server or Server(served)

    # ----------------------------------------------------------------- requests

    def _complete(self, fields: dict) -> dict:
        """One completion request; its first choice plus the answer's usage under ``"_usage"``."""
        body = {"model": self.model, **fields}
        try:
            answer = self.server.request("/completions", body)
        except HTTPFailure as error:
            raise self._explained(error, fields) from None
        choices = answer.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise ServedError(f"{self.served.url} model {self.model!r}: an answer without choices: {str(answer)[:200]}")
        return {**choices[0], "_usage": answer.get("usage") or {}}

    def _explained(self, error: HTTPFailure, fields: dict) -> ServedError:
        where = f"{self.served.url} model {self.model!r}"
        if error.status in (401, 403):
            return ServedError(f"{where}: the server refused the request (HTTP {error.status}: {error.detail}); "
                               f"its API key is read from the environment variable {self.served.api_key_env}")
        if error.status == 404 or "does not exist" in error.detail or "not found" in error.detail.lower():
            listed = self.server.model_ids()
            names = ", ".join(listed) if listed else "it does not say"
            return ServedError(f"{where}: the server does not serve this model (HTTP {error.status}: {error.detail}); "
                               f"it serves: {names}. Serve it, e.g. vllm serve <base> --enable-lora --lora-modules "
                               f"{self.model}=<adapter folder>, or set evaluate.served.base_model/adapter_model")
        if isinstance(fields.get("prompt"), list) and "string" in error.detail:
            return ServedError(f"{where}: the server takes no token-id prompts (HTTP {error.status}: {error.detail}); "
                               f"set evaluate.served.prompt: text for such a server")
        for capability in ("prompt_logprobs", "echo", "logprobs"):
            if capability in fields and capability in error.detail:
                return ServedError(f"{where}: the server cannot answer {capability!r}, which evaluate.loglik needs "
                                   f"(HTTP {error.status}: {error.detail}); set evaluate.loglik: false, or "
                                   f"evaluate.served.loglik_via to what the server has")
        return ServedError(f"{where}: HTTP {error.status}: {error.detail}")

    def _map(self, function: Callable, items: Sequence) -> list:
        if self.served.concurrency == 1 or len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.served.concurrency, len(items))) as pool:
            return list(pool.map(function, items))  # in the items' order, whatever finishes first

    # ----------------------------------------------------------------- generation

    def generate(self, texts: Sequence[str], ids: Sequence[Sequence[int]], max_new_tokens: int) -> list[str]:
        """Greedy continuations of each prompt (its text and this run's ids), stripped."""
        return self._map(lambda pair: self._generate_one(*pair, max_new_tokens), list(zip(texts, ids)))

    def _generate_one(self, text: str, ids: Sequence[int], max_new_tokens: int) -> str:
        prompt = list(ids) if self.served.prompt == "token_ids" else text
        choice = self._complete({"prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0})
        if self.served.prompt == "text":
            counted = choice["_usage"].get("prompt_tokens")
            if counted != len(ids):
                raise ServedError(
                    f"{self.served.url} model {self.model!r}: the server read a prompt as {counted} tokens where this "
                    f"run's tokenizer (right-truncated at evaluate.max_length) makes {len(ids)}: with "
                    f"evaluate.served.prompt: text the server must tokenise as the base does and no prompt may be "
                    f"truncated; use a server that takes token-id prompts. The prompt begins {text[:80]!r}"
                )
        if not isinstance(choice.get("text"), str):
            raise ServedError(f"{self.served.url} model {self.model!r}: a choice without text: {str(choice)[:200]}")
        return choice["text"].strip()

    # ----------------------------------------------------------------- log-likelihood

    def scores(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        """Each pair's summed log-probability of the continuation after the context (token ids)."""
        if self.served.prompt != "token_ids":
            raise ServedError(f"{self.served.url} model {self.model!r}: evaluate.loglik scores token ids, which "
                              f"evaluate.served.prompt: text cannot send; set evaluate.loglik: false or prompt: token_ids")
        return self._map(self._score_one, list(pairs))

    def _score_one(self, pair: tuple[Sequence[int], Sequence[int]]) -> float:
        context, continuation = list(pair[0]), list(pair[1])
        sequence = context + continuation
        if self.served.loglik_via == "prompt_logprobs":
            choice = self._complete({"prompt": sequence, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0})
            positions = choice.get("prompt_logprobs")
            per_token = None if positions is None else [self._position(step, token) for step, token in
                                                         zip(positions[len(context):], continuation)]
        else:
            choice = self._complete({"prompt": sequence, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 0})
            logprobs = choice.get("logprobs") or {}
            values = logprobs.get("token_logprobs")
            per_token = None if values is None else values[len(context):len(sequence)]
        if per_token is None or len(per_token) != len(continuation) or any(v is None for v in per_token):
            raise ServedError(
                f"{self.served.url} model {self.model!r}: the answer carries no {self.served.loglik_via} over the "
                f"prompt's tokens, which evaluate.loglik needs (missing capability); set evaluate.loglik: false, "
                f"or evaluate.served.loglik_via to what the server has"
            )
        return float(sum(per_token))

    def _position(self, step: dict | None, token: int) -> float | None:
        """vLLM's prompt_logprobs entry at one position: ``{"<token id>": {"logprob": x, ...}}``."""
        if not isinstance(step, dict):
            return None
        entry = step.get(str(token), step.get(token))  # JSON keys are strings
        if isinstance(entry, dict):
            return entry.get("logprob")
        return entry if isinstance(entry, (int, float)) else None

    # ----------------------------------------------------------------- before any cell

    def check(self, probe_text: str, probe_ids: Sequence[int], loglik: bool) -> None:
        """One tiny request of each kind evaluation will send, so that an unreachable server, a model
        it does not serve or a missing capability stops the stage before any cell is scored."""
        self._generate_one(probe_text, probe_ids, 1)
        if loglik:
            self.scores([(list(probe_ids[:-1]) or list(probe_ids), list(probe_ids[-1:]))])


def model_name(served: Served, session_id: str, adapter: str | None) -> str:
    """The name a session's model is served under: the base, or its adapter's name."""
    if adapter is None:
        return served.base_model
    return served.adapter_model.format(session=session_id, adapter=adapter)
