"""The response cache that turns a stochastic API into an exact rebuild.

Every backend call is keyed by the sha256 of (backend, model, sampling params,
messages, and the endpoint when ``base_url`` names one) in canonical JSON, and its answer is stored as one small JSON file,
``<root>/<key[:2]>/<key>.json``, written to a temporary file, flushed to disk and
renamed into place. So:

- a rerun with the cache present asks nothing and rebuilds the same bytes (the
  answers are the same answers);
- a stage killed at any moment (kill -9) loses nothing already answered: an entry
  is either complete or absent, never half written, and a rerun pays only for the
  calls that had not returned;
- a changed prompt, model, sampling param or server is a different key, never a stale hit;
- only answers found usable are stored (``Caller.keep``): a broken server's replies
  are asked again on the next run, never replayed.

The key and the entries hold no API key, credentials or time; the endpoint is stored
without its ``user:password@``. ``dvc.yaml`` declares the
cache folder as a persisted output, so DVC versions and shares it like any data.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

TMP_SUFFIX = ".partial"


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(backend: str, model: str, sampling: dict, messages: list[dict], endpoint: str | None = None) -> str:
    payload = {"backend": backend, "model": model, "sampling": sampling, "messages": messages}
    if endpoint:  # absent for the SDK's default endpoint, so those keys stay what they were
        payload["endpoint"] = endpoint
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored entry, or None; an unreadable entry counts as absent (and is asked again)."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, key: str, entry: dict) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{TMP_SUFFIX}")
        text = json.dumps({**entry, "key": key}, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)

    def clean_partials(self) -> int:
        """Remove temporary files left by a killed run (they were never entries)."""
        count = 0
        if self.root.is_dir():
            for tmp in self.root.glob(f"*/*{TMP_SUFFIX}"):
                tmp.unlink(missing_ok=True)
                count += 1
        return count

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
