"""The translatable parts of one file, put back by span, and the validity check.

A condition-5 file is built from its condition-2 text (reserved words already mapped
from the pack) and its English original. Both are tokenized with the stdlib
``tokenize``; the transpiler only ever rewrites NAME tokens, so the two token streams
align one to one, and every decision is made on the English side (where names and
the AST are plain Python) and applied to the condition-2 spans. What is translated:

- ``name``: an identifier the file itself binds (def/class names, parameters,
  assignment and loop targets, ``except ... as``), never an imported name, a dunder,
  a soft keyword or a pack word. After a ``.`` only attributes the file assigns or
  defines in a class body; as ``name=`` inside a call only the file's own parameters,
  so ``json.load`` or ``open(mode=...)`` keep their English names. Each distinct name
  is one segment, so every occurrence gets the same translation.
- ``comment``: the prose of a ``#`` comment (not shebangs, coding cookies or tool
  directives such as ``# type:`` and ``# noqa``).
- ``docstring``: the body of a string that is a statement on its own.
- ``string``: the body of a plain or raw string literal that reads as prose (at least
  two words and a space). Bytes and f-strings are left alone: their bodies are code.
- ``self``/``cls`` are mapped from the pack's ``reserved_words``, never asked for.

A translation is valid when the file keeps its token-type skeleton (same token types,
untranslated tokens byte-identical, strings with their prefix and quotes) and, with
the pack's words reversed, ``ast.parse`` accepts it.
"""

from __future__ import annotations

import ast
import bisect
import io
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass, field

from stages.lib.langpacks import LanguagePack, identifier_form
from stages.lib.transpiler import TranspileError, reverse

# The tiny-aya-global artefact the original stripped (populate_cond5_datasets.py).
LABELED_MAPPING_RE = re.compile(r"original_name_(\w+?)_translated_name_(\w+)", re.UNICODE)

SOFT_KEYWORDS = frozenset(keyword.softkwlist) | {"_"}
RESERVED = ("self", "cls")
_STRING_RE = re.compile(r"([A-Za-z]*)('''|\"\"\"|'|\")", re.DOTALL)
_HEADER_RE = re.compile(r"^!|coding[:=]")  # a shebang or a coding cookie, on the first two lines
_DIRECTIVE_RE = re.compile(r"^\s*(?:type:|noqa|pragma|pylint:|fmt:|isort:|mypy:|flake8|pyright:|ruff:)")
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
# printf and str.format placeholders: a translated string must keep them all
_PLACEHOLDER_RE = re.compile(r"%\([^)]*\)[#0 +-]*\d*(?:\.\d+)?[a-zA-Z]|%[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|\{[^{}\s]*\}")
_LINE_START = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)


class SegmentError(Exception):
    """A file that cannot be segmented (its condition-2 text does not align with the English)."""


@dataclass(frozen=True)
class Segment:
    id: str
    kind: str  # name | comment | docstring | string
    text: str


@dataclass(frozen=True)
class Site:
    start: int
    end: int
    segment: str
    quote: str = ""   # strings: the quote of the literal
    raw: bool = False  # strings: an r-prefix (no escapes possible)
    affix: tuple[str, str] = ("", "")  # names: leading/trailing underscores kept


@dataclass
class Plan:
    """One file: its condition-2 text, what to ask for, and where answers go."""

    text: str
    segments: list[Segment]
    sites: list[Site]
    fixed: list[tuple[int, int, str]]  # self/cls from the pack
    tokens: list[tokenize.TokenInfo] = field(repr=False)
    by_id: dict[str, Segment] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {segment.id: segment for segment in self.segments}


# --------------------------------------------------------------------------- tokens


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as err:
        raise SegmentError(f"does not tokenize: {err}") from None


def _offsets(text: str) -> list[int]:
    """Start offset of each line as tokenize numbers them (lines end at \\n)."""
    starts = [0, 0]
    for index, ch in enumerate(text):
        if ch == "\n":
            starts.append(index + 1)
    return starts


def _span(starts: list[int], token: tokenize.TokenInfo) -> tuple[int, int]:
    return starts[token.start[0]] + token.start[1], starts[token.end[0]] + token.end[1]


def _string_shape(token_text: str) -> tuple[str, str] | None:
    match = _STRING_RE.match(token_text)
    return (match.group(1), match.group(2)) if match else None


# --------------------------------------------------------------------------- the English side


@dataclass
class _Names:
    bound: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)
    params: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    defined: set[str] = field(default_factory=set)  # def and class names: calls whose keywords are ours


def _collect_names(tree: ast.AST) -> _Names:
    names = _Names()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.bound.add(node.name)
            names.defined.add(node.name)
        elif isinstance(node, ast.arg):
            names.bound.add(node.arg)
            names.params.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.imported.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            if isinstance(node.value, ast.Name) and node.value.id in RESERVED:  # self.x = ...: the file's own attribute
                names.attributes.add(node.attr)
        if isinstance(node, ast.ClassDef):  # methods and class attributes are reached as attributes
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.attributes.add(item.name)
                for target in getattr(item, "targets", [getattr(item, "target", None)]):
                    if isinstance(target, ast.Name):
                        names.attributes.add(target.id)
    return names


def _translatable(names: _Names, pack: LanguagePack) -> set[str]:
    return {
        name for name in (names.bound | names.attributes) - names.imported
        if name not in RESERVED and name not in SOFT_KEYWORDS and name not in pack.forward
        and not (name.startswith("__") and name.endswith("__")) and name.strip("_")
    }


def _is_docstring(tokens: list[tokenize.TokenInfo], i: int) -> bool:
    before = tokens[i - 1].type if i else tokenize.ENCODING
    j = i + 1
    while j < len(tokens) and tokens[j].type == tokenize.COMMENT:
        j += 1
    after = tokens[j].type if j < len(tokens) else tokenize.ENDMARKER
    return before in _LINE_START and after in (tokenize.NEWLINE, tokenize.ENDMARKER)


def _reads_as_prose(body: str) -> bool:
    return " " in body and len(_WORD_RE.findall(body)) >= 2


# --------------------------------------------------------------------------- planning


class _Builder:
    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.ids: dict[tuple[str, str], str] = {}
        self.sites: list[Site] = []

    def add(self, kind: str, text: str, start: int, end: int, **shape) -> None:
        key = (kind, text)
        if key not in self.ids:
            self.ids[key] = str(len(self.segments) + 1)
            self.segments.append(Segment(self.ids[key], kind, text))
        self.sites.append(Site(start, end, self.ids[key], **shape))


def _comment_site(builder: _Builder, token_text: str, start: int, line: int) -> None:
    body = token_text[1:]
    stripped = body.strip()
    if (line <= 2 and _HEADER_RE.search(body)) or _DIRECTIVE_RE.match(body) or not _WORD_RE.search(stripped):
        return
    lead = len(body) - len(body.lstrip())
    begin = start + 1 + lead
    builder.add("comment", stripped, begin, begin + len(stripped))


def _string_site(builder: _Builder, token_text: str, start: int, docstring: bool) -> None:
    shape = _string_shape(token_text)
    if shape is None:
        return
    prefix, quote = shape
    if set(prefix.lower()) & {"b", "f"}:
        return
    body = token_text[len(prefix) + len(quote): len(token_text) - len(quote)]
    if not (_WORD_RE.search(body) if docstring else _reads_as_prose(body)):
        return
    begin = start + len(prefix) + len(quote)
    kind = "docstring" if docstring else "string"
    builder.add(kind, body, begin, begin + len(body), quote=quote, raw="r" in prefix.lower())


def plan(code_en: str, code2: str, pack: LanguagePack) -> Plan:
    """The segments of one file; raises SegmentError if the two texts do not align."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code_en.lstrip("\ufeff"))
    except (SyntaxError, ValueError) as err:
        raise SegmentError(f"the English original does not parse: {err}") from None
    bom = 1 if code2.startswith("\ufeff") else 0
    en_tokens, tokens = _tokens(code_en.lstrip("\ufeff")), _tokens(code2[bom:])
    if len(en_tokens) != len(tokens) or any(a.type != b.type for a, b in zip(en_tokens, tokens)):
        raise SegmentError("the condition-2 text does not align token for token with code_en")
    names = _collect_names(tree)
    wanted = _translatable(names, pack)
    starts = _offsets(code2[bom:])
    builder, fixed, brackets = _Builder(), [], []
    for i, (en, tok) in enumerate(zip(en_tokens, tokens)):
        start, end = (offset + bom for offset in _span(starts, tok))
        if tok.type == tokenize.OP:
            if tok.string in "([{":  # remember the callee of a "(": keywords of our own defs are ours
                callee = en_tokens[i - 1].string if i and en_tokens[i - 1].type == tokenize.NAME else ""
                brackets.append(tok.string + callee)
            elif tok.string in ")]}" and brackets:
                brackets.pop()
            continue
        after_dot = i > 0 and en_tokens[i - 1].string == "."
        if tok.type == tokenize.NAME and en.string in RESERVED and not after_dot:
            fixed.append((start, end, pack.reserved_words[en.string]))
        elif tok.type == tokenize.NAME and en.string in wanted and tok.string == en.string:
            opener = brackets[-1] if brackets else ""
            is_kwarg = opener.startswith("(") and i + 1 < len(tokens) and tokens[i + 1].string == "="
            foreign_kwarg = is_kwarg and (opener[1:] not in names.defined or en.string not in names.params)
            if (after_dot and en.string not in names.attributes) or foreign_kwarg:
                continue
            core = en.string.strip("_")  # _load and load share one translation, each keeps its underscores
            lead = en.string[: len(en.string) - len(en.string.lstrip("_"))]
            trail = en.string[len(en.string.rstrip("_")):]
            builder.add("name", core, start, end, affix=(lead, trail))
        elif tok.type == tokenize.COMMENT:
            _comment_site(builder, tok.string, start, tok.start[0])
        elif tok.type == tokenize.STRING:
            _string_site(builder, tok.string, start, _is_docstring(tokens, i))
    return Plan(code2, builder.segments, builder.sites, fixed, tokens)


# --------------------------------------------------------------------------- answers


def strip_labeled_mappings(text: str) -> tuple[str, int]:
    """Replace ``original_name_X_translated_name_Y`` with ``Y``; the text and the count."""
    return LABELED_MAPPING_RE.subn(r"\2", text)


def _fit_string(value: str, site: Site) -> str:
    """A translated string body made to sit inside its literal's quotes."""
    if site.raw:
        return value if len(site.quote) == 3 else value.replace("\r", " ").replace("\n", " ")
    if len(site.quote) == 1:
        value = value.replace("\r", "\\r").replace("\n", "\\n")
        value = re.sub(r"(?<!\\)((?:\\\\)*)" + re.escape(site.quote), r"\1\\" + site.quote, value)
    else:
        value = value.replace(site.quote * 3, ("\\" + site.quote) * 3)
        if value.endswith(site.quote) and not value.endswith("\\" + site.quote):
            value = value[:-1] + "\\" + site.quote
    if (len(value) - len(value.rstrip("\\"))) % 2:
        value += "\\"
    return value


def _single_string(text: str) -> bool:
    try:
        tokens = [t for t in _tokens(text) if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    except SegmentError:
        return False
    return len(tokens) == 1 and tokens[0].type == tokenize.STRING


def check_answer(plan_: Plan, segment_id: str, value: object) -> str | None:
    """Why one answer cannot be used; None when it can (placeholders, quotes, identifier rule)."""
    segment = plan_.by_id[segment_id]
    if not isinstance(value, str):
        return f"item {segment_id}: the answer must be a string"
    value, _ = strip_labeled_mappings(value)
    if segment.kind == "name":
        form = identifier_form(value)
        if not form or not form.isidentifier() or keyword.iskeyword(form):
            return f"item {segment_id}: {value!r} does not make an identifier"
        return None
    if segment.kind in ("string", "docstring") and sorted(_PLACEHOLDER_RE.findall(segment.text)) != sorted(
        _PLACEHOLDER_RE.findall(value)
    ):
        return f"item {segment_id}: keep the placeholders {sorted(set(_PLACEHOLDER_RE.findall(segment.text)))} exactly"
    for site in plan_.sites:
        if site.segment == segment_id and site.quote:
            literal = ("r" if site.raw else "") + site.quote + _fit_string(value, site) + site.quote
            if not _single_string(literal):
                return f"item {segment_id}: the translation breaks its string literal"
            break
    return None


def _name_forms(plan_: Plan, answers: dict[str, str], pack: LanguagePack) -> dict[str, str]:
    """Identifier forms for the name segments, made unique against everything else in the file."""
    replaced = {plan_.text[s.start:s.end] for s in plan_.sites if plan_.by_id[s.segment].kind == "name"}
    taken = {t.string.strip("_") or t.string for t in plan_.tokens if t.type == tokenize.NAME and t.string not in replaced}
    taken |= set(pack.reverse) | set(pack.reserved_words.values()) | set(keyword.kwlist) | SOFT_KEYWORDS
    forms = {}
    for segment in plan_.segments:
        if segment.kind != "name":
            continue
        form = identifier_form(answers[segment.id]) or segment.text
        candidate, n = form, 1
        while candidate in taken:
            n += 1
            candidate = f"{form}_{n}"
        taken.add(candidate)
        forms[segment.id] = candidate
    return forms


def apply(plan_: Plan, answers: dict[str, str], pack: LanguagePack) -> tuple[str, int]:
    """The translated file and the number of stripped ``original_name_..`` artefacts."""
    stripped, cleaned = 0, {}
    for key, value in answers.items():
        cleaned[key], count = strip_labeled_mappings(value)
        stripped += count
    forms = _name_forms(plan_, cleaned, pack)
    edits = list(plan_.fixed)
    for site in plan_.sites:
        kind = plan_.by_id[site.segment].kind
        value = cleaned[site.segment]
        if kind == "name":
            new = site.affix[0] + forms[site.segment] + site.affix[1]
        elif kind == "comment":
            new = " ".join(value.splitlines()) or plan_.by_id[site.segment].text
        else:
            new = _fit_string(value, site)
        edits.append((site.start, site.end, new))
    edits.sort()
    pieces, last = [], 0
    for start, end, new in edits:
        pieces.append(plan_.text[last:start])
        pieces.append(new)
        last = end
    pieces.append(plan_.text[last:])
    return "".join(pieces), stripped


# --------------------------------------------------------------------------- validity


def _skeleton_problem(plan_: Plan, translated: str) -> str | None:
    bom = 1 if translated.startswith("\ufeff") else 0
    try:
        new_tokens = _tokens(translated[bom:])
    except SegmentError as err:
        return str(err)
    if len(new_tokens) != len(plan_.tokens):
        return f"token count {len(new_tokens)} != {len(plan_.tokens)}"
    starts = _offsets(plan_.text[bom:])
    touched = sorted({site.start for site in plan_.sites} | {start for start, _, _ in plan_.fixed})
    for old, new in zip(plan_.tokens, new_tokens):
        if old.type != new.type:
            return f"line {old.start[0]}: {tokenize.tok_name[old.type]} became {tokenize.tok_name[new.type]}"
        if old.type == tokenize.STRING:
            if _string_shape(old.string) != _string_shape(new.string):
                return f"line {old.start[0]}: a string literal changed its prefix or quotes"
            continue
        start, end = (offset + bom for offset in _span(starts, old))
        k = bisect.bisect_left(touched, start)
        is_site = old.type in (tokenize.NAME, tokenize.COMMENT) and k < len(touched) and touched[k] < end
        if not is_site and old.string != new.string:
            return f"line {old.start[0]}: untranslated token {old.string!r} became {new.string!r}"
    return None


def ast_check(translated: str, pack: LanguagePack, scope: str) -> str:
    """The original's informational check: pack words reversed, then ``ast.parse``; "pass" or "fail: ..."."""
    try:
        english = reverse(translated, pack, scope)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(english.lstrip("\ufeff"))
    except SyntaxError as err:
        return f"fail: {err.msg} at line {err.lineno}"
    except (TranspileError, ValueError, RecursionError, MemoryError) as err:
        return f"fail: {type(err).__name__}: {err}"
    return "pass"


def validate(plan_: Plan, translated: str, pack: LanguagePack, scope: str) -> tuple[str | None, str]:
    """(skeleton problem or None, ast result); valid when both are clean."""
    return _skeleton_problem(plan_, translated), ast_check(translated, pack, scope)
