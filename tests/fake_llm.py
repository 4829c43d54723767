"""A local stand-in for the Cohere v2 chat API and the OpenAI chat-completions API.

Serves 127.0.0.1 on an ephemeral port from a thread (stdlib ``http.server``), well
enough for the real SDK clients. Answers are the offline glossary's answers to the
same request; faults are injected per request: ``429``, ``500``, ``401``,
``timeout`` (answers after the client gave up), ``bad_body`` (HTTP 200, body not
JSON), ``not_json`` (the model's text is prose), ``truncated`` (half an answer,
finish reason max tokens), ``labeled`` (identifiers as
``original_name_X_translated_name_Y``) and ``echo_auth`` (a good answer after the
request's authorization header, as a careless proxy might). Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from stages.lib.translation.offline import OfflineBackend
from stages.lib.translation.prompt import read_request


class FakeLLM:
    def __init__(self, timeout_sleep: float = 1.5, delay: float = 0.0):
        self.requests: list[dict] = []
        self.faults: list[str] = []  # consumed one per request, first
        self.rule: Callable[[dict], str | None] = lambda request: None  # then this, per request
        self.timeout_sleep = timeout_sleep
        self.delay = delay
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault(self, record: dict) -> str | None:
        with self.lock:
            self.requests.append(record)
            if self.faults:
                return self.faults.pop(0)
        return self.rule(record)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                record = {"path": self.path, "auth": self.headers.get("authorization", ""), "messages": body.get("messages", []),
                          "body": body}
                fault = fake._fault(record)
                if fake.delay:
                    time.sleep(fake.delay)
                try:
                    self._answer(record, fault)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, payload: object, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, record: dict, fault: str | None) -> None:
                if fault in ("429", "500"):
                    return self._send(int(fault), {"message": f"injected {fault}"})
                if fault == "401":  # a careless server that echoes the credentials back
                    return self._send(401, {"message": f"invalid api token {record['auth']}"})
                if fault == "timeout":
                    time.sleep(fake.timeout_sleep)
                if fault == "bad_body":
                    return self._send(200, None, raw=b'{"id": "x", "message": {"content": [')
                text, finish = _model_text(record["messages"], fault)
                if fault == "echo_auth":
                    text = f"(you sent {record['auth']}) {text}"
                cohere = self.path.endswith("/v2/chat")
                if cohere:
                    payload = {"id": "fake", "finish_reason": "MAX_TOKENS" if finish == "length" else "COMPLETE",
                               "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                               "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}}}
                else:
                    payload = {"id": "fake", "object": "chat.completion", "created": 0, "model": record["body"].get("model"),
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                self._send(200, payload)

        return Handler


def _model_text(messages: list[dict], fault: str | None) -> tuple[str, str]:
    good = OfflineBackend().complete(messages).text
    if fault == "not_json":
        return "Sure! Here are the translations you asked for.", "stop"
    if fault == "truncated":
        return good[: len(good) // 2], "length"
    if fault == "labeled":
        request = read_request(messages[-1]["content"])
        answer = json.loads(good)
        for item in request["items"]:
            if item["kind"] == "identifier":
                answer[item["id"]] = f"original_name_{item['text']}_translated_name_{answer[item['id']]}"
        return json.dumps(answer, ensure_ascii=False), "stop"
    return good, "stop"


def items_of(record: dict) -> list[dict]:
    """The segments a recorded request asked for."""
    return read_request(record["messages"][-1]["content"])["items"]
