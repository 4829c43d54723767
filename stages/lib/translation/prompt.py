"""The versioned prompt and the chunking of condition 5's requests.

The original's prompt lives inside legesher-core/legesher-i18n and is not public;
what is known: about 25 calls per file (per element or per batch, not the whole
file), and a ``_CRITICAL_RULES`` block with a "no explanation" rule. This design
keeps the code out of the model's hands altogether: the model never sees or writes
code, only a JSON list of segments (identifiers, comments, docstrings, string
bodies), and answers a JSON object mapping each id to its translation, which
:mod:`.segments` puts back by span. Code structure is therefore kept by
construction; what can still go wrong (a broken string, a lost placeholder, an
unusable identifier, a truncated answer) is checked, and the request is asked again
with the reason, up to ``translate.attempts`` times.

Chunking: segments in order of first appearance, at most ``chunk_segments`` and
``chunk_chars`` characters of segment text per request (one longer segment goes
alone), so most files are one request. Bump PROMPT_VERSION whenever the text or
the request format changes: it is written into every output's provenance, and the
cache key covers the exact messages, so a changed prompt is never answered from
old entries.
"""

from __future__ import annotations

import json
import re

from stages.lib.translation.segments import Segment

PROMPT_VERSION = "cond5-segments-json-v1"

LANGUAGE_NAMES = {"zh": "Simplified Chinese", "es": "Spanish", "ur": "Urdu"}

SYSTEM_PROMPT = """\
You translate the human-language parts of a Python program from English into {language} ({lang}).
You receive a JSON object whose "items" are parts of one source file, each with an "id", a "kind" and a "text":
- "identifier": a name the program defines (variable, function, class, parameter, attribute). Answer one
  identifier in {language}: its words joined with "_", no spaces or punctuation. Keep its meaning and role.
- "comment": the text of a # comment. Translate the prose; keep code, names, URLs and numbers as they are.
- "docstring": the body of a docstring. Translate the prose; keep line breaks, indentation, code examples,
  doctest lines (>>>), parameter names and markup.
- "string": the body of a string literal exactly as written in the source. Translate the prose; keep every
  escape sequence (\\n, \\t, \\\\, \\"), every placeholder (%s, %d, %(name)s, {{}}, {{0}}, {{name}}) and leading or
  trailing spaces exactly.

CRITICAL RULES:
1. Answer with one JSON object only, mapping every id to its translation: {{"1": "...", "2": "..."}}.
2. No explanation, no notes, no markdown fences, nothing before or after the JSON object.
3. Translate every item. If an item holds nothing to translate, return its text unchanged.
4. Never write both names, such as original_name_X_translated_name_Y: write only the translation.
"""

USER_TEMPLATE = "{request}"
RETRY_TEMPLATE = "\n\nAttempt {attempt} of {attempts}: your previous answer was rejected: {problems}. Answer again with the complete JSON object."


def prompt_record() -> dict:
    """What goes into provenance: the version and the exact text of the templates."""
    return {"version": PROMPT_VERSION, "system": SYSTEM_PROMPT, "user": USER_TEMPLATE, "retry": RETRY_TEMPLATE}


def chunks(segments: list[Segment], max_chars: int, max_segments: int) -> list[list[Segment]]:
    """Segments in order, cut into requests of bounded size."""
    out: list[list[Segment]] = []
    current: list[Segment] = []
    size = 0
    for segment in segments:
        if current and (size + len(segment.text) > max_chars or len(current) >= max_segments):
            out.append(current)
            current, size = [], 0
        current.append(segment)
        size += len(segment.text)
    if current:
        out.append(current)
    return out


_KIND_LABEL = {"name": "identifier", "comment": "comment", "docstring": "docstring", "string": "string"}


def messages(lang: str, chunk: list[Segment], attempt: int = 1, attempts: int = 1, problems: list[str] | None = None) -> list[dict]:
    """The chat messages of one request; attempt > 1 carries why the last answer was rejected."""
    language = LANGUAGE_NAMES.get(lang, lang)
    request = {
        "source_language": "English",
        "target_language": f"{language} ({lang})",
        "items": [{"id": s.id, "kind": _KIND_LABEL[s.kind], "text": s.text} for s in chunk],
    }
    user = USER_TEMPLATE.format(request=json.dumps(request, ensure_ascii=False, indent=1))
    if attempt > 1:
        user += RETRY_TEMPLATE.format(attempt=attempt, attempts=attempts, problems="; ".join(problems or ["unusable"]))
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(language=language, lang=lang)},
        {"role": "user", "content": user},
    ]


def read_request(user_content: str) -> dict:
    """The request JSON inside a user message (the offline backend and the test server read it)."""
    return json.loads(user_content.split(RETRY_TEMPLATE.split("{")[0])[0])


_FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_answer(text: str, chunk: list[Segment], finish_reason: str = "") -> tuple[dict[str, str], list[str]]:
    """The id -> translation mapping of an answer, and the problems that make it unusable."""
    body = _FENCE_RE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    truncated = finish_reason.lower() in {"max_tokens", "length"}
    try:
        answer = json.loads(body[start:end + 1]) if start >= 0 and end > start else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        why = "the answer was cut off (finish reason %s)" % finish_reason if truncated else "the answer is not a JSON object"
        return {}, [why]
    missing = [s.id for s in chunk if s.id not in answer]
    problems = [f"ids missing from the answer: {', '.join(missing)}"] if missing else []
    return {s.id: answer[s.id] for s in chunk if s.id in answer}, problems
