"""The translation backends, and the one path every call takes: cache, pacing, retries.

- ``cohere``: the Cohere SDK (``cohere.ClientV2(...).chat``), key from ``COHERE_API_KEY``.
- ``openai``: the OpenAI SDK's chat completions against any OpenAI-compatible server
  (``vllm serve``, SGLang) at ``base_url``, key from ``OPENAI_API_KEY`` (any value for a
  local server that checks none).
- ``offline``: the project's glossaries (:mod:`.offline`), deterministic, no network.

:class:`Caller` is the only way a request reaches a backend: a cache hit returns at
once; otherwise the call waits for its turn (``min_call_gap_s`` between the starts of
two calls, shared by all threads), and a 429, a 5xx, a timeout, a dropped connection
or an unreadable response body is retried ``max_retries`` times with doubling backoff.
The SDKs' own retries are off, so the bound is the one in params (the original lost
seven hours to an SDK retry loop that hung after 429 bursts). A rejected key (401/403)
stops the stage, and so do ``max_connection_failures`` connection failures in a row
across all files (a server that is down would otherwise cost every file its retries).
An answer reaches the cache only once the caller has found it usable (:meth:`Caller.keep`).
Keys are read from the environment only; every message and every reply that leaves
this module has the key and the ``user:password@`` of ``base_url`` removed, in case a
server echoes them.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from stages.lib.errors import StageError
from stages.lib.params import Translate
from stages.lib.translation.cache import ResponseCache, request_key

KEY_ENV = {"cohere": "COHERE_API_KEY", "openai": "OPENAI_API_KEY"}
# Shorter "secrets" (OPENAI_API_KEY=x for a local server, a user name) are not removed from replies: they
# would cut ordinary words out of translations. A Basic auth header's base64 form is always longer.
MIN_REPLY_SECRET = 8
TRANSLATOR_LABELS = {"offline": "offline-glossary"}


class BackendError(StageError):
    """A call that did not produce an answer; ``transient`` ones were retried first."""

    def __init__(self, message: str, transient: bool = False, fatal: bool = False, connection: bool = False):
        super().__init__(message)
        self.transient = transient
        self.fatal = fatal
        self.connection = connection  # the server could not be reached at all

    @property
    def exit_code(self) -> int:
        return 3 if self.fatal else 4


class ServerDown(BackendError):
    """Too many connection failures in a row: every further call is refused without being made."""

    def __init__(self, count: int, endpoint: str, last: BackendError):
        super().__init__(
            f"{count} connection failures in a row to {endpoint} (the last: {last}); the server looks down, so no "
            "further call was made (translate.max_connection_failures)",
            fatal=True,
        )

    @property
    def exit_code(self) -> int:
        return 4


class MissingKey(BackendError):
    def __init__(self, backend: str):
        env = KEY_ENV[backend]
        hint = " (any value for a local server that checks no key)" if backend == "openai" else ""
        super().__init__(
            f"translate.backend {backend!r} needs the environment variable {env}{hint}; "
            "it is read from the environment only, never from params.yaml or a file",
            fatal=True,
        )


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str


class Backend(Protocol):
    name: str
    model: str

    def complete(self, messages: list[dict]) -> Reply: ...


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # "user:pw" before "pw"
        text = text.replace(secret, "***")
    return text


def public_url(url: str | None) -> str | None:
    """``url`` without its ``user:password@``: what may be recorded or shown."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def url_secrets(url: str | None) -> list[str]:
    """The credentials inside ``url``'s userinfo, as written, decoded and as a Basic auth header carries them."""
    if not url or "@" not in urlsplit(url).netloc:
        return []
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    plain = f"{unquote(user)}:{unquote(password)}"
    found = {userinfo, plain, base64.b64encode(plain.encode("utf-8")).decode("ascii")}
    found |= {password, unquote(password)} if password else {user, unquote(user)}  # no password: the user is the token
    return [value for value in found if value.strip(":")]


def _classify(error: Exception, secret: Iterable[str]) -> BackendError:
    """An SDK exception as a BackendError whose message holds no key."""
    status = getattr(error, "status_code", None)
    name = type(error).__name__
    if status is None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
    body = redact(str(getattr(error, "body", "") or "")[:200], secret)
    if status in (401, 403):
        return BackendError(f"the server rejected the API key (HTTP {status}); check the key's value", fatal=True)
    if status == 429 or (isinstance(status, int) and status >= 500):
        return BackendError(f"HTTP {status} ({name}): {body}", transient=True)
    if isinstance(status, int) and 200 <= status < 300:
        return BackendError(f"unreadable response body ({name})", transient=True)
    if isinstance(status, int):
        return BackendError(f"HTTP {status} ({name}): {body}")
    lowered = name.lower()
    if any(word in lowered for word in ("timeout", "connect", "network", "protocol", "readerror", "remote", "decode", "json", "validation")):
        return BackendError(f"{name}: {redact(str(error), secret)[:200]}", transient=True, connection="connect" in lowered)
    return BackendError(f"{name}: {redact(str(error), secret)[:200]}")


def _api_key(backend: str) -> str:
    key = os.environ.get(KEY_ENV[backend], "")
    if not key.strip():
        raise MissingKey(backend)
    return key


def _sampling(cfg: Translate) -> dict:
    return {k: v for k, v in cfg.sampling.model_dump().items() if v is not None}


class CohereBackend:
    name = "cohere"

    def __init__(self, cfg: Translate):
        import cohere  # the translate extra; only needed when this backend is chosen

        self.model = cfg.model
        self.secrets = (_api_key("cohere"), *url_secrets(cfg.base_url))
        self.sampling = _sampling(cfg)
        kwargs = {"base_url": cfg.base_url} if cfg.base_url else {}
        self.client = cohere.ClientV2(
            api_key=self.secrets[0], timeout=cfg.timeout_s, max_retries=0, log_warning_experimental_features=False, **kwargs
        )

    def complete(self, messages: list[dict]) -> Reply:
        try:
            response = self.client.chat(model=self.model, messages=messages, **self.sampling)
            text = "".join(getattr(part, "text", "") or "" for part in (response.message.content or []))
            return Reply(text, str(response.finish_reason or ""))
        except Exception as error:  # every SDK failure becomes a classified, key-free BackendError
            raise _classify(error, self.secrets) from None


class OpenAIBackend:
    name = "openai"

    def __init__(self, cfg: Translate):
        import openai

        self.model = cfg.model
        self.secrets = (_api_key("openai"), *url_secrets(cfg.base_url))
        sampling = _sampling(cfg)
        if "p" in sampling:
            sampling["top_p"] = sampling.pop("p")
        self.sampling = sampling
        kwargs = {"base_url": cfg.base_url} if cfg.base_url else {}
        self.client = openai.OpenAI(api_key=self.secrets[0], timeout=cfg.timeout_s, max_retries=0, **kwargs)

    def complete(self, messages: list[dict]) -> Reply:
        try:
            response = self.client.chat.completions.create(model=self.model, messages=messages, **self.sampling)
            choice = response.choices[0]
            return Reply(choice.message.content or "", str(choice.finish_reason or ""))
        except Exception as error:
            raise _classify(error, self.secrets) from None


def make_backend(cfg: Translate) -> Backend:
    """The configured backend; raises MissingKey, or a missing SDK, before anything else happens."""
    try:
        if cfg.backend == "cohere":
            return CohereBackend(cfg)
        if cfg.backend == "openai":
            return OpenAIBackend(cfg)
    except ImportError as error:
        raise BackendError(
            f"translate.backend {cfg.backend!r} needs the {cfg.backend} SDK, which is not installed ({error.name or error}): "
            "pip install -e '.[translate]'",
            fatal=True,
        ) from None
    from stages.lib.translation.offline import OfflineBackend

    return OfflineBackend(cfg.model)


def translator_label(cfg: Translate) -> str:
    """How outputs name the translator: ``offline-glossary`` or ``<backend>:<model>``."""
    return TRANSLATOR_LABELS.get(cfg.backend, f"{cfg.backend}:{cfg.model}")


class Pacer:
    """At least ``gap`` seconds between the starts of two calls, across threads."""

    def __init__(self, gap: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.gap, self.clock, self.sleep = gap, clock, sleep
        self.lock = threading.Lock()
        self.next_at = 0.0

    def wait(self) -> None:
        with self.lock:
            now = self.clock()
            start = max(now, self.next_at)
            self.next_at = start + self.gap
        if start > now:
            self.sleep(start - now)


@dataclass
class Answer:
    reply: Reply
    cached: bool
    retries: int
    key: str = ""
    messages: list[dict] | None = None


class Caller:
    """Cache first; otherwise paced, bounded, retried calls. Thread-safe."""

    def __init__(self, backend: Backend, cfg: Translate, cache: ResponseCache, sleep: Callable[[float], None] = time.sleep):
        self.backend, self.cfg, self.cache, self.sleep = backend, cfg, cache, sleep
        self.sampling = _sampling(cfg)
        self.endpoint = public_url(cfg.base_url)  # in the key: another server's answers are other answers
        self.secrets = tuple(s for s in getattr(backend, "secrets", ()) if len(s) >= MIN_REPLY_SECRET)
        self.pacer = Pacer(cfg.min_call_gap_s, sleep=sleep)
        self.stopped = threading.Event()  # set after a fatal error: no further calls
        self.lock = threading.Lock()
        self.connection_failures = 0  # in a row, across threads
        self.down: ServerDown | None = None

    def ask(self, messages: list[dict]) -> Answer:
        """The reply to ``messages``, from the cache or the backend; :meth:`keep` stores a usable one."""
        key = request_key(self.backend.name, self.backend.model, self.sampling, messages, self.endpoint)
        entry = self.cache.get(key)
        if entry is not None:
            return Answer(Reply(entry["reply"]["text"], entry["reply"]["finish_reason"]), True, 0, key, messages)
        retries = 0
        while True:
            if self.stopped.is_set():
                raise self.down or BackendError("stopped after an earlier fatal error", fatal=True)
            self.pacer.wait()
            try:
                reply = self.backend.complete(messages)
                self._count(None)
                break
            except BackendError as error:
                self._count(error)
                if error.fatal:
                    self.stopped.set()
                if self.down is not None:
                    raise self.down from None
                if not error.transient or retries >= self.cfg.max_retries:
                    if error.transient:
                        raise BackendError(f"{error} (gave up after {retries} retries)", transient=True) from None
                    raise
                self.sleep(min(self.cfg.backoff_s * 2 ** retries, self.cfg.max_backoff_s))
                retries += 1
        return Answer(Reply(redact(reply.text, self.secrets), reply.finish_reason), False, retries, key, messages)

    def keep(self, answer: Answer) -> None:
        """Cache an answer the caller found usable; an unusable one is asked again on the next run."""
        if answer.cached:
            return
        entry = {
            "backend": self.backend.name, "model": self.backend.model, "sampling": self.sampling,
            "messages": answer.messages, "reply": {"text": answer.reply.text, "finish_reason": answer.reply.finish_reason},
        }
        if self.endpoint:
            entry["endpoint"] = self.endpoint
        self.cache.put(answer.key, entry)

    def _count(self, error: BackendError | None) -> None:
        """The circuit breaker: connection failures in a row, reset by anything else."""
        with self.lock:
            if error is None or not error.connection:
                self.connection_failures = 0
                return
            self.connection_failures += 1
            if self.connection_failures >= self.cfg.max_connection_failures and self.down is None:
                where = self.endpoint or f"the {self.backend.name} SDK's default endpoint"
                self.down = ServerDown(self.connection_failures, where, error)
                self.stopped.set()
