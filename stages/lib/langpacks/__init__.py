"""The project's own language packs: loading, the identifier rule and validation.

Legesher's real packs (v0.5.1/v0.6.0 in Phase 2, v0.7.3 in Phase 3) cannot be
installed, so the transpiler reads stand-ins written for this project, one YAML
file per phase and language (``phase3/zh.yaml``...). The YAML holds the natural
target-language words; :func:`identifier_form` turns each into the identifier
that is written into code. Validation is strict because a bad pack would
silently corrupt every transpiled file: two English words sharing one form, or
a form that ends with "_", would make the reverse translation ambiguous.
Errors read ``<pack file>: <category>.<key>: <what is wrong>``.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from stages.lib.errors import StageError

PACKS_DIR = Path(__file__).resolve().parent

# Python 3.11's built-in functions table (docs "Built-in Functions"), 71 names.
# It is what a reader calls a builtin; exit/quit/copyright/credits/license are
# added by `site` and are not in it, nor are __build_class__ or __loader__.
BUILTIN_FUNCTIONS = (
    "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray",
    "bytes", "callable", "chr", "classmethod", "compile", "complex", "delattr", "dict", "dir",
    "divmod", "enumerate", "eval", "exec", "filter", "float", "format", "frozenset", "getattr",
    "globals", "hasattr", "hash", "help", "hex", "id", "input", "int", "isinstance", "issubclass",
    "iter", "len", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct",
    "open", "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set",
    "setattr", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "type", "vars",
    "zip", "__import__",
)

# Every exception and warning class in `builtins` on CPython 3.11/3.12 for Linux
# (69 names, aliases such as IOError included: they are distinct names in code).
BUILTIN_EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup",
    "BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError",
    "ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
    "DeprecationWarning", "EOFError", "EncodingWarning", "EnvironmentError", "Exception",
    "ExceptionGroup", "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning",
    "GeneratorExit", "IOError", "ImportError", "ImportWarning", "IndentationError", "IndexError",
    "InterruptedError", "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError",
    "MemoryError", "ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplementedError",
    "OSError", "OverflowError", "PendingDeprecationWarning", "PermissionError",
    "ProcessLookupError", "RecursionError", "ReferenceError", "ResourceWarning", "RuntimeError",
    "RuntimeWarning", "StopAsyncIteration", "StopIteration", "SyntaxError", "SyntaxWarning",
    "SystemError", "SystemExit", "TabError", "TimeoutError", "TypeError", "UnboundLocalError",
    "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError",
    "UnicodeWarning", "UserWarning", "ValueError", "Warning", "ZeroDivisionError",
)

RESERVED_WORDS = ("self", "cls")

# category -> the exact English keys a pack must translate
CATEGORIES = {
    "keywords": tuple(keyword.kwlist),
    "builtins": BUILTIN_FUNCTIONS,
    "exceptions": BUILTIN_EXCEPTIONS,
    "reserved_words": RESERVED_WORDS,
}
PACK_KEYS = {"lang", "stands_in_for", *CATEGORIES}
CHILD_KEYS = {"lang", "stands_in_for", "inherits", "overrides"}
NAME_RE = re.compile(r"^[a-z0-9]+$")
# One NAME token for the stdlib tokenize of 3.11, whose Name pattern is \w+.
TOKEN_NAME_RE = re.compile(r"\w+")
# Characters dropped before anything else: combining marks (Mn) split a NAME
# token in 3.11's tokenize, and format characters (Cf: ZWNJ, ZWJ) are invisible.
DROPPED_CATEGORIES = {"Mn", "Cf"}
# A form whose first character cannot start an identifier gets this prefix.
START_PREFIX = "n_"


class PackError(StageError, ValueError):
    """A language pack that does not load or validate; the message names file and key."""


@dataclass(frozen=True)
class LanguagePack:
    """One validated pack: English word -> identifier form, per category.

    ``forward``/``reverse`` cover the categories the transpiler rewrites
    (keywords, builtins, exceptions); ``reserved_words`` is only carried for the
    condition-5 translator.
    """

    lang: str
    name: str
    sha256: str
    stands_in_for: str
    keywords: dict[str, str]
    builtins: dict[str, str]
    exceptions: dict[str, str]
    reserved_words: dict[str, str]
    forward: dict[str, str]
    reverse: dict[str, str]


def _is_start(ch: str) -> bool:
    return ch.isidentifier()


def _is_continue(ch: str) -> bool:
    return ("a" + ch).isidentifier()


def identifier_form(value: str) -> str:
    """Turn a natural target-language value into the identifier written into code.

    NFKC-normalise; drop combining marks and format characters; replace every run
    of characters that cannot continue an identifier (or are not ``\\w``) with
    "_"; strip leading and trailing "_"; prefix ``n_`` when the first character
    cannot start an identifier. So ``"si no, si"`` -> ``"si_no_si"``.
    """
    text = unicodedata.normalize("NFKC", value)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in DROPPED_CATEGORIES)
    out, gap = [], False
    for ch in text:
        if _is_continue(ch) and TOKEN_NAME_RE.fullmatch(ch):
            if gap and out:
                out.append("_")
            out.append(ch)
            gap = False
        else:
            gap = True
    form = "".join(out).strip("_")
    if form and not _is_start(form[0]):
        form = START_PREFIX + form
    return form


def _form_problem(form: str, english: str) -> str | None:
    """Why ``form`` cannot be used for ``english``; None when it can."""
    if not form:
        return "is empty after the identifier rule"
    if not form.isidentifier() or not TOKEN_NAME_RE.fullmatch(form):
        return f"{form!r} is not a single identifier token"
    if keyword.iskeyword(form) or keyword.issoftkeyword(form):
        return f"{form!r} is a Python keyword"
    if unicodedata.normalize("NFKC", form) != form:
        return f"{form!r} is not NFKC-stable"
    if form.endswith("_"):
        return f"{form!r} ends with '_' (reserved for escaping user identifiers)"
    if form == english:
        return f"{form!r} equals its English key"
    return None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last."""


def _construct_unique(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise PackError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique)


def _read_yaml(path: Path) -> tuple[dict, bytes]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PackError(f"{path}: cannot read: {err}") from err
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)
    except (PackError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise PackError(f"{path}: {err}") from err
    if not isinstance(data, dict):
        raise PackError(f"{path}: top level must be a mapping")
    return data, raw


def _check_keys(path: Path, data: dict, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise PackError(f"{path}: {key}: unknown top-level key (allowed: {sorted(allowed)})")


def _resolve(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, list[bytes]]:
    """The merged mapping of a pack file and the raw bytes of every file it used."""
    if path in chain:
        raise PackError(f"{path}: inherits: cycle through {[str(p) for p in chain]}")
    data, raw = _read_yaml(path)
    if "inherits" not in data:
        _check_keys(path, data, PACK_KEYS)
        return data, [raw]
    _check_keys(path, data, CHILD_KEYS)
    parent_path = (path.parent / str(data["inherits"])).resolve()
    parent, raws = _resolve(parent_path, chain + (path,))
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in parent.items()}
    merged["lang"] = data.get("lang", parent.get("lang"))
    merged["stands_in_for"] = data.get("stands_in_for", parent.get("stands_in_for"))
    if merged["lang"] != parent.get("lang"):
        raise PackError(f"{path}: lang: {merged['lang']!r} differs from the inherited {parent.get('lang')!r}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise PackError(f"{path}: overrides: must be a mapping of category -> {{key: value}}")
    for category, entries in overrides.items():
        if category not in CATEGORIES or not isinstance(entries, dict):
            raise PackError(f"{path}: overrides.{category}: not a category mapping")
        for key, value in entries.items():
            if key not in CATEGORIES[category]:
                raise PackError(f"{path}: overrides.{category}.{key}: not a key of {category}")
            merged[category][key] = value
    return merged, [raw] + raws


def _validate_category(path: Path, category: str, entries: object) -> dict[str, str]:
    if not isinstance(entries, dict):
        raise PackError(f"{path}: {category}: must be a mapping of English -> target word")
    expected = CATEGORIES[category]
    for key in entries:
        if key not in expected:
            raise PackError(f"{path}: {category}.{key}: not a key of {category}")
    forms = {}
    for key in expected:
        if key not in entries:
            raise PackError(f"{path}: {category}.{key}: missing")
        value = entries[key]
        if not isinstance(value, str) or not value.strip():
            raise PackError(f"{path}: {category}.{key}: value must be a non-empty string")
        form = identifier_form(value)
        problem = _form_problem(form, key)
        if problem:
            raise PackError(f"{path}: {category}.{key}: {problem} (value {value!r})")
        forms[key] = form
    return forms


def pack_path(packs: str, lang: str) -> Path:
    """The YAML file of one pack, e.g. ``pack_path("phase3", "zh")``."""
    if not NAME_RE.match(packs) or not NAME_RE.match(lang):
        raise PackError(f"bad pack name {packs!r}/{lang!r}: expected lowercase letters and digits")
    return PACKS_DIR / packs / f"{lang}.yaml"


def load_path(path: Path, name: str) -> LanguagePack:
    """Load and validate one pack file (following ``inherits``)."""
    data, raws = _resolve(Path(path).resolve())
    by_category = {category: _validate_category(path, category, data.get(category)) for category in CATEGORIES}
    owner: dict[str, str] = {}
    for category, forms in by_category.items():
        for key, form in forms.items():
            if form in owner:
                raise PackError(f"{path}: {category}.{key}: form {form!r} is already used by {owner[form]}")
            owner[form] = f"{category}.{key}"
    english = {key for keys in CATEGORIES.values() for key in keys}
    for form, where in owner.items():
        if form in english:
            raise PackError(f"{path}: {where}: form {form!r} is itself an English key of a pack")
    lang = data.get("lang")
    if not isinstance(lang, str) or not NAME_RE.match(lang):
        raise PackError(f"{path}: lang: must be a lowercase language code")
    if not isinstance(data.get("stands_in_for"), str):
        raise PackError(f"{path}: stands_in_for: must say which Legesher pack this replaces")
    forward = {**by_category["keywords"], **by_category["builtins"], **by_category["exceptions"]}
    return LanguagePack(
        lang=lang,
        name=name,
        sha256=hashlib.sha256(b"".join(raws)).hexdigest(),
        stands_in_for=data["stands_in_for"],
        keywords=by_category["keywords"],
        builtins=by_category["builtins"],
        exceptions=by_category["exceptions"],
        reserved_words=by_category["reserved_words"],
        forward=forward,
        reverse={form: key for key, form in forward.items()},
    )


def load_pack(packs: str, lang: str) -> LanguagePack:
    """Load ``stages/lib/langpacks/<packs>/<lang>.yaml``, e.g. ``load_pack("phase3", "zh")``."""
    path = pack_path(packs, lang)
    pack = load_path(path, f"{packs}/{lang}")
    if pack.lang != lang:
        raise PackError(f"{path}: lang: {pack.lang!r} does not match the file name")
    return pack
