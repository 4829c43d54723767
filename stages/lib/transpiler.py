"""Condition 2's transpiler: Python's reserved words rewritten into another language.

It stands in for Legesher's token backend. Only NAME tokens are ever rewritten,
by span replacement on the original text, so strings, comments, whitespace and
newlines keep their exact bytes and ``reverse(transpile(x)) == x``.

Tokens come from one regular expression built from the stdlib ``tokenize``
module's own token grammar (its ``Number`` pattern and its string rules, ``\\w+``
names) and applied to the whole text, on 3.12 with a small recursive walk
through f-strings, because ``tokenize.generate_tokens`` is too slow for the
5,000-files-in-10-seconds goal. Only files that ``ast.parse``
are transpiled, and on those the scanner yields exactly tokenize's NAME tokens
(checked by tests against ``tokenize`` on real files), on the Python that runs:
- 3.11: an f-string is one STRING token, left alone.
- 3.12 (PEP 701): the code in an f-string's replacement fields is tokenized like
  any code (``f"{len(x) if x else 0}"`` has NAMEs len, x, if, else) and is
  translated; a string inside a field may reuse the f-string's quote
  (``f"{d["in"]}"``) and stays a string. A name is the C tokenizer's: the longest
  run of word and non-ASCII characters.
So a file whose f-string fields hold reserved words transpiles differently on
3.11 and 3.12; outputs record the Python version in their provenance.

Two scopes:
- ``aware`` (default): keywords are always translated; a builtin function or
  exception only where it is an ``ast.Name`` load in a file that never binds
  that name. A user identifier whose base (trailing "_" removed) is a target
  form gets one "_" appended, and ``reverse`` strips it, so the round trip is
  exact even for code that already uses target-language words as names.
- ``unaware``: the original token backend (CORE-1107): every NAME equal to a
  pack key is translated wherever it is, with no escaping, so a file that
  already uses a target form as a name does not round-trip.

A NAME that 3.11's tokenize splits off a longer identifier (the identifier
continues with a combining mark, e.g. Urdu vowel signs) is never touched
(3.12 reads the whole identifier as one NAME).
"""

from __future__ import annotations

import ast
import bisect
import functools
import multiprocessing
import re
import sys
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from stages.lib.langpacks import LanguagePack, PackError, load_pack

__all__ = [
    "LanguagePack", "PackError", "Result", "TranspileError",
    "load_pack", "reverse", "transpile", "transpile_batch",
]

SCOPES = ("aware", "unaware")
BOM = "\ufeff"


class TranspileError(Exception):
    """A file the transpiler refuses; ``reason`` is a short snake_case tag."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Result:
    """The outcome for one file of a batch; ``text`` is None when ``ok`` is False."""

    ok: bool
    text: str | None
    reason: str | None
    detail: str | None
    n_translated: int


# --------------------------------------------------------------------------- scanning


def _no_groups(pattern: str) -> str:
    """tokenize's patterns use capturing groups; make them non-capturing."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _strings(prefix: str = "[rRbBuUfF]{0,2}") -> str:
    # The four string bodies of tokenize (Single3, Double3, Single, Double), written
    # for a whole text: a backslash escapes any character, newlines included.
    triple = r"{q}{q}{q}[^{q}\\]*(?:(?:\\.|{q}(?!{q}{q}))[^{q}\\]*)*{q}{q}{q}"
    single = r"{q}[^{q}\\\r\n]*(?:\\(?:\r\n|.)[^{q}\\\r\n]*)*{q}"
    bodies = [triple.format(q="'"), triple.format(q='"'), single.format(q="'"), single.format(q='"')]
    # Any run of prefix letters: in parseable code only tokenize's valid prefixes
    # (r, b, f, u, rb, fr, ... in any case) can stand right before a quote.
    return prefix + r"(?:" + "|".join(bodies) + ")"


_NUMBER = _no_groups(tokenize.Number)

# Order: runs that hold no token we need, strings, comments, numbers (so that
# "1if" gives NUMBER 1 and NAME if, like tokenize), then names (group 1).
_SCANNER = re.compile(
    r"[^\w'\"#]++|" + _strings() + r"|#[^\r\n]*+|" + _NUMBER + r"|(\w++)",
    re.DOTALL,
)
_NEWLINE = re.compile(r"\r\n?|\n")


def _names_311(text: str) -> list[tuple[int, str]]:
    """(start, name) for every NAME token of 3.11's tokenize: an f-string is one string."""
    return [(match.start(), match.group(1)) for match in _SCANNER.finditer(text) if match.lastindex]


# 3.12 (PEP 701) tokenizes the code inside an f-string's replacement fields, whose strings
# may reuse the f-string's own quote (f"{d["in"]}"), and its C tokenizer reads a name as
# the longest run of ASCII word characters and non-ASCII characters ("ifُ" is one NAME).
_F_START = r"((?:[fF][rR]?|[rR][fF])(?:'''|\"\"\"|'|\"))"
_TAIL_312 = "|" + _strings("[rRbBuU]{0,2}") + r"|#[^\r\n]*+|" + _NUMBER + r"|((?:\w|[^\x00-\x7f])++)"
# outside f-strings: group 1 an f-string's start, group 2 a name
_CODE_312 = re.compile(r"[^\w'\"#\x80-\U0010ffff]++|" + _F_START + _TAIL_312, re.DOTALL)
# in a replacement field: groups 1-3 an opening bracket, a closing one and ":", 4 an f-string, 5 a name
_FIELD_312 = re.compile(r"[^\w'\"#{}()\[\]:\x80-\U0010ffff]++|([{(\[])|([)\]}])|(:)|" + _F_START + _TAIL_312,
                        re.DOTALL)


@functools.cache
def _middle(quote: str, raw: bool, spec: bool) -> re.Pattern:
    """An f-string's literal text up to a replacement field, a "}" or the closing quote.

    ``{{`` and ``}}`` are literal braces (not in a format spec); a backslash pairs with
    any character but a brace, and ``\\N{...}`` is one escape unless the string is raw.
    """
    q = re.escape(quote[0])
    parts = [f"[^{{}}\\\\{q}]++" if len(quote) == 3 else f"[^{{}}\\\\{q}\\r\\n]++"]
    if not spec:
        parts.append(r"\{\{|\}\}")
    if not raw:
        parts.append(r"\\N\{[^}]*\}")
    parts.append(r"\\(?:\r\n|[^{}])|\\")
    if len(quote) == 3:
        parts.append(f"{q}(?!{q}{q})")
    return re.compile("(?:" + "|".join(parts) + ")*+", re.DOTALL)


def _fstring(text: str, pos: int, start: str, out: list[tuple[int, str]]) -> int:
    """Names of the f-string whose body starts at ``pos``; returns the end of its closing quote."""
    quote = start.lstrip("fFrR")
    raw = "r" in start.lower()
    literal = _middle(quote, raw, spec=False)
    while pos < len(text):
        pos = literal.match(text, pos).end()
        if text.startswith(quote, pos):
            return pos + len(quote)
        pos = _field(text, pos + 1, quote, raw, out) if text.startswith("{", pos) else pos + 1
    return pos


def _field(text: str, pos: int, quote: str, raw: bool, out: list[tuple[int, str]]) -> int:
    """Names of a replacement field whose code starts at ``pos``; returns the end of its "}"."""
    depth = 0
    while pos < len(text):
        match = _FIELD_312.match(text, pos)
        if match is None:
            pos += 1
            continue
        pos, kind = match.end(), match.lastindex
        if kind == 1:
            depth += 1
        elif kind == 2:
            if depth == 0:
                return pos
            depth -= 1
        elif kind == 3 and depth == 0:  # the format spec: literal text and nested fields
            spec = _middle(quote, raw, spec=True)
            while pos < len(text):
                pos = spec.match(text, pos).end()
                if not text.startswith("{", pos):
                    return pos + 1 if text.startswith("}", pos) else pos
                pos = _field(text, pos + 1, quote, raw, out)
        elif kind == 4:
            pos = _fstring(text, pos, match.group(4), out)
        elif kind == 5:
            out.append((match.start(), match.group(5)))
    return pos


def _names_312(text: str) -> list[tuple[int, str]]:
    """(start, name) for every NAME token of 3.12's tokenize, f-string fields included."""
    out: list[tuple[int, str]] = []
    pos = 0
    while pos < len(text):
        for match in _CODE_312.finditer(text, pos):
            if match.lastindex == 2:
                out.append((match.start(), match.group(2)))
            elif match.lastindex == 1:
                pos = _fstring(text, match.end(), match.group(1), out)
                break
        else:
            break
    return out


# (start, name) for every NAME token of a text, in order, as the running Python's tokenize finds them
_names = _names_312 if sys.version_info >= (3, 12) else _names_311


def _glued(ch: str) -> bool:
    """True for a character that continues an identifier but is not \\w (e.g. a mark)."""
    return not (ch.isalnum() or ch == "_") and ("a" + ch).isidentifier()


def _is_fragment(text: str, start: int, end: int) -> bool:
    """A NAME that tokenize cut out of a longer identifier: leave it alone."""
    after = text[end:end + 1]
    before = text[start - 1:start] if start else ""
    return (after > "\x7f" and _glued(after)) or (before > "\x7f" and _glued(before))


# --------------------------------------------------------------------------- ast


_LEAF_FIELDS = {"ctx", "id", "attr", "name", "names", "arg", "asname", "module", "level", "kind",
                "type_comment", "op", "is_async", "conversion", "rest", "tag"}
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        fields = _CHILD_FIELDS[cls] = tuple(f for f in cls._fields if f not in _LEAF_FIELDS)
    return fields


def _bound_names(node: ast.AST) -> list[str]:
    """Names a non-Name node binds (def/class names, parameters, imports, ...)."""
    cls = node.__class__
    if cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
        return [node.name]
    if cls is ast.arg:
        return [node.arg]
    if cls is ast.Import:
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    if cls is ast.ImportFrom:
        return [alias.asname or alias.name for alias in node.names]
    if cls in (ast.Global, ast.Nonlocal):
        return list(node.names)
    if cls in (ast.ExceptHandler, ast.MatchAs, ast.MatchStar):
        return [node.name] if node.name else []
    if cls is ast.MatchMapping:
        return [node.rest] if node.rest else []
    return []


_BINDERS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.arg, ast.Import, ast.ImportFrom,
            ast.Global, ast.Nonlocal, ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping)


def _builtin_sites(tree: ast.AST, wanted: set[str]) -> set[tuple[int, int]]:
    """(line, utf-8 column) of Name loads of ``wanted`` names the file never binds.

    Shadowing is decided per file, conservatively: any binding of a name
    anywhere (assignment, parameter, import, def, global, del, match capture...)
    keeps every occurrence of it in English.
    """
    bound: set[str] = set()
    loads: list[tuple[str, int, int]] = []
    stack = [tree]
    name_cls, load_cls, ast_cls = ast.Name, ast.Load, ast.AST
    while stack:
        node = stack.pop()
        cls = node.__class__
        if cls is name_cls:
            if node.ctx.__class__ is load_cls:
                if node.id in wanted:
                    loads.append((node.id, node.lineno, node.col_offset))
            else:
                bound.add(node.id)
            continue
        if cls in _BINDERS:
            bound.update(_bound_names(node))
        for field in _child_fields(cls):
            value = getattr(node, field, None)
            if value.__class__ is list:
                stack.extend(item for item in value if isinstance(item, ast_cls))
            elif isinstance(value, ast_cls):
                stack.append(value)
    return {(line, col) for name, line, col in loads if name not in bound}


def _parse(body: str) -> ast.AST:
    if "\x00" in body:  # a binary file; CPython versions disagree on the exception type
        raise TranspileError("null_byte", "contains a NUL character (binary file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(body)
    except SyntaxError as err:
        raise TranspileError("syntax_error", f"does not parse: {err.msg} (line {err.lineno})") from err
    except (RecursionError, MemoryError) as err:
        raise TranspileError("parse_error", f"too deeply nested to parse: {type(err).__name__}") from err


class _Lines:
    """Maps a text offset to ast's (line, UTF-8 byte column).

    Lines end at \\r\\n, \\r or \\n, as in CPython's tokenizer; \\f and the other
    characters str.splitlines() knows are not line ends.
    """

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[index]
        segment = self.text[start:offset]
        return index + 1, (len(segment) if segment.isascii() else len(segment.encode("utf-8")))


# --------------------------------------------------------------------------- rewriting


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced; edits are in order."""
    if not edits:
        return text
    pieces, last = [], 0
    for start, end, new in edits:
        pieces.append(text[last:start])
        pieces.append(new)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _split_bom(text: str) -> tuple[str, str]:
    return (BOM, text[1:]) if text.startswith(BOM) else ("", text)


def _forward(text: str, pack: LanguagePack, scope: str) -> tuple[str, int]:
    """The transpiled text and the number of translated tokens."""
    _check_scope(scope)
    bom, body = _split_bom(text)
    tree = _parse(body)
    keywords, callables, forms = pack.keywords, pack.forward, pack.reverse
    aware = scope == "aware"
    edits: list[tuple[int, int, str]] = []
    candidates: list[tuple[int, int, str]] = []  # builtins waiting for the ast's verdict
    for start, name in _names(body):
        end = start + len(name)
        if name in keywords or (not aware and name in callables):
            if not _is_fragment(body, start, end):
                edits.append((start, end, callables[name]))
        elif name in callables:
            candidates.append((start, end, name))
        elif aware and name.rstrip("_") in forms and not _is_fragment(body, start, end):
            edits.append((end, end, "_"))  # escape a user identifier that looks like a form
    n_translated = sum(1 for _, _, new in edits if new != "_")
    if candidates:
        sites = _builtin_sites(tree, {name for _, _, name in candidates})
        lines = _Lines(body)
        for start, end, name in candidates:
            if lines.position(start) in sites and not _is_fragment(body, start, end):
                edits.append((start, end, callables[name]))
                n_translated += 1
        edits.sort()
    return bom + _splice(body, edits), n_translated


def transpile(text: str, pack: LanguagePack, scope: str = "aware") -> str:
    """Translate the reserved words of one Python file; raises TranspileError."""
    return _forward(text, pack, scope)[0]


def reverse(text: str, pack: LanguagePack, scope: str = "aware") -> str:
    """Map target forms back to English (and, when aware, undo the "_" escapes).

    Needs no parse: a transpiled file is not valid Python.
    """
    _check_scope(scope)
    bom, body = _split_bom(text)
    english, aware = pack.reverse, scope == "aware"
    edits = []
    for start, name in _names(body):
        end = start + len(name)
        if name in english:
            if not _is_fragment(body, start, end):
                edits.append((start, end, english[name]))
        elif aware and name[-1] == "_" and name.rstrip("_") in english and not _is_fragment(body, start, end):
            edits.append((end - 1, end, ""))
    return bom + _splice(body, edits)


# --------------------------------------------------------------------------- batches


def _first_difference(a: str, b: str) -> str:
    left, right = a.splitlines(True), b.splitlines(True)
    for number, (x, y) in enumerate(zip(left, right), start=1):
        if x != y:
            return f"line {number}: {x!r} != {y!r}"
    return f"line count {len(left)} != {len(right)}"


def _one(text: str, pack: LanguagePack, scope: str, verify_roundtrip: bool) -> Result:
    try:
        out, n_translated = _forward(text, pack, scope)
    except TranspileError as err:
        return Result(False, None, err.reason, str(err), 0)
    except Exception as err:  # a bad file must never stop a batch
        return Result(False, None, "internal_error", f"{type(err).__name__}: {err}", 0)
    if verify_roundtrip:
        back = reverse(out, pack, scope)
        if back != text:
            detail = "roundtrip_mismatch: " + _first_difference(text, back)
            if scope == "aware":
                return Result(False, None, "roundtrip_mismatch", detail, n_translated)
            return Result(True, out, None, detail, n_translated)  # shipped like the original backend
    return Result(True, out, None, None, n_translated)


def _chunk(args: tuple[Sequence[str], LanguagePack, str, bool]) -> list[Result]:
    texts, pack, scope, verify_roundtrip = args
    return [_one(text, pack, scope, verify_roundtrip) for text in texts]


def transpile_batch(
    texts: Sequence[str],
    pack: LanguagePack,
    scope: str = "aware",
    verify_roundtrip: bool = True,
    workers: int = 1,
) -> list[Result]:
    """Transpile many files; results in input order, identical for any ``workers``."""
    _check_scope(scope)
    texts = list(texts)
    if workers <= 1 or len(texts) < 2:
        return _chunk((texts, pack, scope, verify_roundtrip))
    size = max(1, -(-len(texts) // (workers * 8)))
    jobs = [(texts[i:i + size], pack, scope, verify_roundtrip) for i in range(0, len(texts), size)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        chunks = pool.map(_chunk, jobs, chunksize=1)
    return [result for chunk in chunks for result in chunk]
