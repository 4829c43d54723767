"""The offline backend: deterministic word-for-word glossary translation (smoke scale).

It answers the very requests a model gets (:mod:`.prompt`), so the smoke pipeline
exercises the prompt, the cache, the substitution and the checks without a network.
Identifiers are split into words (snake_case, camelCase), each known word replaced
from ``glossaries/<lang>.yaml``; comments, docstrings and strings have their known
words replaced in place, with escapes and placeholders (``\\n``, ``%s``, ``{name}``)
protected. Unknown words stay English and word order stays English: crude and
honest, and every output says ``offline-glossary``.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import yaml

from stages.lib.translation.backends import Reply
from stages.lib.translation.prompt import read_request

GLOSSARIES = Path(__file__).resolve().parent / "glossaries"

# protected runs first (escapes, placeholders), then words (group 1)
_TEXT_RE = re.compile(r"\\.|%\([^)]*\)[#0 +-]*\d*(?:\.\d+)?[a-zA-Z]|%[#0 +-]*\d*(?:\.\d+)?[a-zA-Z%]|\{[^{}]*\}|([A-Za-z]+)", re.DOTALL)
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@lru_cache(maxsize=None)
def load_glossary(lang: str) -> tuple[dict[str, str], str]:
    """English word -> target word, and the sha256 of the file (for provenance)."""
    path = GLOSSARIES / f"{lang}.yaml"
    raw = path.read_bytes()
    data = yaml.safe_load(raw.decode("utf-8"))
    if not isinstance(data, dict) or data.get("lang") != lang or not isinstance(data.get("words"), dict):
        raise ValueError(f"{path}: expected lang: {lang} and a words: mapping")
    return {str(k).lower(): str(v) for k, v in data["words"].items()}, hashlib.sha256(raw).hexdigest()


def _word(word: str, words: dict[str, str], lang: str) -> str:
    target = words.get(word.lower())
    if target is None:
        return word
    if lang == "es" and word[:1].isupper():
        return target.upper() if word.isupper() and len(word) > 1 else target[:1].upper() + target[1:]
    return target


def translate_identifier(name: str, lang: str) -> str:
    words, _ = load_glossary(lang)
    parts = [part for chunk in name.split("_") for part in _CAMEL_RE.findall(chunk)]
    return "_".join(_word(part, words, lang) for part in parts) or name


def translate_text(text: str, lang: str) -> str:
    words, _ = load_glossary(lang)
    return _TEXT_RE.sub(lambda m: _word(m.group(1), words, lang) if m.group(1) else m.group(0), text)


class OfflineBackend:
    """A backend with no network: answers each request from the glossary of its target language."""

    name = "offline"

    def __init__(self, model: str = "offline-glossary"):
        self.model = model

    def complete(self, messages: list[dict]) -> Reply:
        request = read_request(messages[-1]["content"])
        lang = request["target_language"].rsplit("(", 1)[-1].rstrip(")")
        answer = {
            item["id"]: translate_identifier(item["text"], lang) if item["kind"] == "identifier" else translate_text(item["text"], lang)
            for item in request["items"]
        }
        return Reply(json.dumps(answer, ensure_ascii=False, sort_keys=True), "COMPLETE")
