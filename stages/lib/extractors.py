"""The study's answer extractors: versioned pure functions from a model's raw output to a label.

    python -m stages.reparse --extract sib200 --extractor refined < outputs.jsonl   # one label per line

Reads nothing and writes nothing: each extractor maps one decoded continuation (``raw_output``)
to a label or ``None`` (a parse failure, scored as wrong). Who scored what, and with which
rules, is the whole difference between the study's "orig" and "rep" numbers, so every rule of
the originals is reproduced here, bugs included where the published numbers depend on them:

- ``strict``: the inference-time extractors frozen in ``evaluate.ipynb`` (PR #49). They wrote
  ``pred``/``correct`` into every ``_results_`` file: the "orig" numbers.
- ``refined``: ``reparse_results.py``, which re-scores the stored ``raw_output``: the "rep"
  numbers, i.e. the paper's. X-CSQA and Belebele use the strict choice extractor unchanged.
- ``phase2``: the March 2026 suite. MGSM's last number, X-CSQA's choice over the whole output,
  XNLI v2 (the reported re-score). ``phase2-v0`` and ``phase2-v1`` are the XNLI extractors the
  baseline and the adapters were first scored with (the "before" numbers).

Kept on purpose, because a published number depends on each (none is behind an option, since
fixing any of them would change a published figure and no fix is asked for):

- strict SIB-200 Rule B holds ``سیاست/تکنالوجی`` (politics/technology) as science/technology;
- ``neutra`` is a plain substring, so it also matches inside ``neutrality``;
- the choice extractor upper-cases, so the article in ``"A vague answer"`` is option A, and a
  letter glued to CJK text fails Python's Unicode ``\\b`` (``答案是B`` is None);
- the refined SIB conjunction split is case-sensitive (``Science And Technology`` is None);
- refined XNLI Tier 3 has no negation guard for E/C (zero rows affected on the baseline);
- MGSM compares strings, and ``\\d`` also matches non-ASCII digits (``۱۸`` never equals ``18``).

The term tables use ``\\uXXXX`` escapes so the code points are visible in review; they equal
``extractor-terms.tsv`` of the spec (``tests/test_extractors.py`` compares them). Every output
scored with an extractor records its ``version`` and :func:`source_sha256` of this file.

Changelog (bump the version of every extractor whose behaviour changes):
- 1.0: all extractors as the originals.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

BENCHMARKS = ("xnli", "csqa", "sib200", "belebele", "mgsm")

XNLI_LABELS = ("entailment", "contradiction", "neutral")  # the priority order of Tier 1a, not positions

SIB200_CATEGORIES = (  # the order of the strict canonical scan
    "science/technology",
    "travel",
    "politics",
    "sports",
    "health",
    "entertainment",
    "geography",
)

_S = "science/technology"

# ---------------------------------------------------------------------------------------------
# Refined SIB-200 (reparse_results.py): one piece of a split answer -> its category, exact match
# on the lower-cased piece. 62 keys: English 10 + sub-topics 7 + Urdu 20 + Chinese 9 +
# Spanish 10 + Arabic 6. Urdu uses ی U+06CC; the Arabic forms (code-switches of the
# Urdu-prompted model) use ي U+064A and ك U+0643.
# ---------------------------------------------------------------------------------------------
SIB200_TERM_TO_CATEGORY: dict[str, str] = {
    "science/technology": _S,
    "science": _S,
    "technology": _S,
    "travel": "travel",
    "politics": "politics",
    "sports": "sports",
    "sport": "sports",
    "health": "health",
    "entertainment": "entertainment",
    "geography": "geography",
    "physics": _S,
    "chemistry": _S,
    "transportation": _S,
    "telecommunications": _S,
    "internet security": _S,
    "interactive design": _S,
    "ai": _S,
    "\u0633\u0627\u0626\u0646\u0633": _S,  # سائنس
    "\u0679\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc": _S,  # ٹکنالوجی
    "\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc": _S,  # تکنالوجی
    "\u0679\u06cc\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc": _S,  # ٹیکنالوجی
    "\u062a\u06a9\u0646\u0648\u0644\u0648\u062c\u06cc": _S,  # تکنولوجی
    "\u0639\u0644\u0645": _S,  # علم
    "\u062a\u06a9\u0646\u06cc\u06a9": _S,  # تکنیک
    "\u0627\u0646\u0679\u0631\u0627\u06cc\u06a9\u0679\u0648 \u0688\u06cc\u0632\u0627\u0626\u0646": _S,  # انٹرایکٹو ڈیزائن
    "\u0633\u06cc\u0679\u06cc\u0644\u0627\u0626\u0679 \u0641\u0648\u0646": _S,  # سیٹیلائٹ فون
    "\u0627\u0646\u0679\u0631\u0646\u06cc\u0679 \u067e\u0631\u0627\u06a9\u0633\u06cc": _S,  # انٹرنیٹ پراکسی
    "\u0679\u0631\u0627\u0646\u0633\u067e\u0648\u0631\u0679\u06cc\u0634\u0646": _S,  # ٹرانسپورٹیشن
    "\u0633\u06cc\u0627\u0633\u062a": "politics",  # سیاست
    "\u06a9\u06be\u06cc\u0644": "sports",  # کھیل
    "\u0633\u067e\u0648\u0631\u0679\u0633": "sports",  # سپورٹس
    "\u0633\u0641\u0631": "travel",  # سفر
    "\u0633\u06cc\u0627\u062d\u062a": "travel",  # سیاحت
    "\u0645\u0633\u0627\u0641\u0631\u062a": "travel",  # مسافرت
    "\u0645\u0633\u0627\u0641\u0631": "travel",  # مسافر
    "\u0635\u062d\u062a": "health",  # صحت
    "\u062a\u0641\u0631\u06cc\u062d": "entertainment",  # تفریح
    "\u79d1\u5b66": _S,  # 科学
    "\u6280\u672f": _S,  # 技术
    "\u516c\u5171\u4ea4\u901a": "travel",  # 公共交通 (reviewer decision: travel, not sci/tech)
    "\u653f\u6cbb": "politics",  # 政治
    "\u4f53\u80b2": "sports",  # 体育
    "\u65c5\u884c": "travel",  # 旅行
    "\u65c5\u6e38": "travel",  # 旅游
    "\u5a31\u4e50": "entertainment",  # 娱乐
    "\u5730\u7406": "geography",  # 地理
    "ciencia": _S,
    "tecnolog\u00eda": _S,  # tecnología
    "tecnologia": _S,
    "pol\u00edtica": "politics",  # política
    "politica": "politics",
    "deportes": "sports",
    "viajes": "travel",
    "viaje": "travel",
    "salud": "health",
    "entretenimiento": "entertainment",
    "\u0627\u0644\u0633\u064a\u0627\u0633\u0629": "politics",  # السياسة
    "\u0633\u064a\u0627\u0633\u0629": "politics",  # سياسة
    "\u0627\u0644\u0631\u064a\u0627\u0636\u0629": "sports",  # الرياضة
    "\u0631\u064a\u0627\u0636\u0629": "sports",  # رياضة
    "\u0627\u0644\u062a\u0643\u0646\u0648\u0644\u0648\u062c\u064a\u0627": _S,  # التكنولوجيا
    "\u062a\u0643\u0646\u0648\u0644\u0648\u062c\u064a\u0627": _S,  # تكنولوجيا
}

# stripped from the answer line and from each piece; the last three are U+060C U+06D4 U+3002
SIB200_STRIP = " \t.,:;!?()[]{}\"'\u060c\u06d4\u3002"
# replaced by "/" before splitting, case-sensitively, on the line as the model wrote it
SIB200_CONJUNCTIONS = (" and ", " y ", " e ", " \u0648 ", "\u548c", "\u4e0e")  # و 和 与
_SIB200_SEPARATORS = re.compile("[/\u060c,&;+]")  # / ، , & ; +

# ---------------------------------------------------------------------------------------------
# XNLI native label words: a lower-cased plain substring of the first line, in this dict order
# (the first key found wins, whatever its position). Strict and refined Tier 1b.
# ---------------------------------------------------------------------------------------------
NATIVE_LABEL_MAP: dict[str, str] = {
    "\u8574\u542b": "entailment",  # 蕴含
    "\u8574\u6db5": "entailment",  # 蕴涵
    "\u77db\u76fe": "contradiction",  # 矛盾
    "\u4e2d\u7acb": "neutral",  # 中立
    "implicaci\u00f3n": "entailment",  # implicación
    "implicacion": "entailment",
    "contradicci\u00f3n": "contradiction",  # contradicción
    "contradiccion": "contradiction",
    "neutro": "neutral",
    "neutra": "neutral",  # also inside "neutrality": kept, the published numbers include it
    "\u0644\u0627\u0632\u0645\u06cc": "entailment",  # لازمی
    "\u0644\u0627\u0632\u0645 \u0622\u062a\u06cc \u06c1\u06d2": "entailment",  # لازم آتی ہے
    "\u0627\u0646\u0636\u0645\u0627\u0645\u06cc\u062a": "entailment",  # انضمامیت
    "\u062a\u0631\u062f\u06cc\u062f": "contradiction",  # تردید
    "\u063a\u06cc\u0631\u062c\u0627\u0646\u0628\u062f\u0627\u0631": "neutral",  # غیرجانبدار
}

# refined Tier 2 is skipped when the line carries one of these: "没有entailment" denies the label
XNLI_TIER2_NEGATION = ("\u6ca1\u6709", "\u6c92\u6709")  # 没有 沒有

# refined Tier 3: paraphrases that imply a label without naming it; ordered, first match wins
XNLI_PARAPHRASE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("\u6ca1\u6709.{0,8}\u5173\u7cfb", "neutral"),  # 没有.{0,8}关系
    ("\u6ca1\u6709.{0,8}\u5173\u8054", "neutral"),  # 没有.{0,8}关联
    ("\u6ca1\u6709.{0,8}\u8054\u7cfb", "neutral"),  # 没有.{0,8}联系
    ("\u06a9\u0648\u0626\u06cc.{0,15}\u062a\u0639\u0644\u0642.{0,8}\u0646\u06c1\u06cc\u06ba", "neutral"),  # کوئی.{0,15}تعلق.{0,8}نہیں
    ("\u5426\u5b9a", "contradiction"),  # 否定
    ("\u76f4\u63a5\u7ed3\u679c|\u81ea\u7136\u7ed3\u679c|\u5fc5\u7136\u7ed3\u679c", "entailment"),  # 直接结果|自然结果|必然结果
    ("\u63a8\u8bba|\u63a8\u65ad", "entailment"),  # 推论|推断
    ("\u7b49\u540c|\u7b49\u4ef7", "entailment"),  # 等同|等价
)

# ---------------------------------------------------------------------------------------------
# Strict SIB-200 (evaluate.ipynb, PR #49)
# ---------------------------------------------------------------------------------------------
STRICT_SIB200_STRIP = " .,:;!?()[]{}\"'"
# Rule B: a substring of the line -> science/technology
SIB200_SCITECH_NATIVE = (
    "\u0633\u0627\u0626\u0646\u0633/\u0679\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc",  # سائنس/ٹکنالوجی
    "\u0633\u0627\u0626\u0646\u0633/\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc",  # سائنس/تکنالوجی
    # politics/technology: a bug of the original (it is not science/technology), kept because
    # the published "orig" numbers were scored with it
    "\u0633\u06cc\u0627\u0633\u062a/\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc",  # سیاست/تکنالوجی
    "science/\u062a\u06a9\u0646\u06cc\u06a9",  # science/تکنیک
    "science/\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc",  # science/تکنالوجی
    "\u79d1\u5b66/\u6280\u672f",  # 科学/技术
    "ciencia/tecnolog\u00eda",  # ciencia/tecnología
    "ciencia y tecnolog\u00eda",  # ciencia y tecnología
)
# Rule C: the whole line -> science/technology
SIB200_SCITECH_BARE_SUBCATEGORIES = frozenset(
    {"physics", "chemistry", "transportation", "telecommunications", "internet security", "interactive design", "ai"}
)
# last resort: the whole line is a category name or one of four aliases. Its own table, not a
# slice of the refined map, so that editing the refined extractor never moves the strict one.
SIB200_ALIASES: dict[str, str] = {
    **{category: category for category in SIB200_CATEGORIES},
    "science": _S,
    "technology": _S,
    "science and technology": _S,
    "sport": "sports",
}

# ---------------------------------------------------------------------------------------------
# Phase 2 XNLI native maps: v2 (reported) lacks Spanish neutro/neutra; v1 also lacks two Urdu keys
# ---------------------------------------------------------------------------------------------
PHASE2_V2_NATIVE_LABEL_MAP: dict[str, str] = {k: v for k, v in NATIVE_LABEL_MAP.items() if k not in ("neutro", "neutra")}
PHASE2_V1_NATIVE_LABEL_MAP: dict[str, str] = {
    k: v
    for k, v in PHASE2_V2_NATIVE_LABEL_MAP.items()
    if k not in ("\u0644\u0627\u0632\u0645 \u0622\u062a\u06cc \u06c1\u06d2", "\u0627\u0646\u0636\u0645\u0627\u0645\u06cc\u062a")
}

_XNLI_LABEL_RES = tuple((label, re.compile(rf"\b{label}\b")) for label in XNLI_LABELS)
_XNLI_PARAPHRASE_RES = tuple((re.compile(pattern), label) for pattern, label in XNLI_PARAPHRASE_PATTERNS)
_MGSM_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def first_line(text: str) -> str:
    """Every Phase 3 extractor reads only the first line: later lines leak explanations and code."""
    return text.strip().split("\n")[0].strip()


# ----------------------------------------- XNLI ----------------------------------------------


def _xnli_labels_then_native(text_lower: str, native: Mapping[str, str]) -> str | None:
    """Tier 1: an English label as a whole word (label priority E > C > N), then a native word."""
    return _xnli_tier1(text_lower, native)[0]


def _xnli_tier1(text_lower: str, native: Mapping[str, str]) -> tuple[str | None, str | None]:
    for label, pattern in _XNLI_LABEL_RES:
        if pattern.search(text_lower):
            return label, "tier1a_english"
    for key, label in native.items():
        if key.lower() in text_lower:
            return label, "tier1b_native"
    return None, None


def xnli_strict(text: str) -> str | None:
    """``"Entailment, contradiction"`` is entailment: the first label *in priority order* wins."""
    return _xnli_labels_then_native(first_line(text).lower(), NATIVE_LABEL_MAP)


def xnli_refined(text: str) -> str | None:
    """Tiers 1a/1b as strict, so refined can only turn a None into a label (never regress).

    Tier 2 takes a label glued to CJK text (``答案是entailment``), which ``\\b`` cannot see,
    unless the line negates it; Tier 3 reads Chinese and Urdu paraphrases of a relation.
    """
    return xnli_refined_tier(text)[0]


XNLI_TIERS = ("tier1a_english", "tier1b_native", "tier2_glued", "tier3_paraphrase")


def xnli_refined_tier(text: str) -> tuple[str | None, str | None]:
    """:func:`xnli_refined`'s label and the tier (one of :data:`XNLI_TIERS`) that matched it.

    One function for both, so the label-bias analysis can never count tiers of another rule.
    """
    line = first_line(text)
    line_lower = line.lower()
    tagged = _xnli_tier1(line_lower, NATIVE_LABEL_MAP)
    if tagged[0] is not None:
        return tagged
    if not any(negation in line for negation in XNLI_TIER2_NEGATION):
        for label in XNLI_LABELS:
            if label in line_lower:
                return label, "tier2_glued"
    for pattern, label in _XNLI_PARAPHRASE_RES:
        if pattern.search(line):
            return label, "tier3_paraphrase"
    return None, None


def xnli_phase2_v0(text: str) -> str | None:
    """Phase 2 baseline run: English labels only, anywhere in the output (no native words)."""
    return _xnli_labels_then_native(text.strip().lower(), {})


def xnli_phase2_v1(text: str) -> str | None:
    """Phase 2 adapter runs: the whole output; native words case-sensitive, so ``Contradicción`` fails."""
    label = _xnli_labels_then_native(text.strip().lower(), {})
    if label is not None:
        return label
    stripped = text.strip()
    for key, label in PHASE2_V1_NATIVE_LABEL_MAP.items():
        if key in stripped:
            return label
    return None


def xnli_phase2_v2(text: str) -> str | None:
    """Phase 2 reported re-score (``rescore_xnli.py``): strict Phase 3 without neutro/neutra."""
    return _xnli_labels_then_native(first_line(text).lower(), PHASE2_V2_NATIVE_LABEL_MAP)


# ------------------------------------ multiple choice ----------------------------------------

_CHOICE_RES: dict[str, tuple[re.Pattern, re.Pattern]] = {}


def _choice(text_upper: str, choices: str) -> str | None:
    """Leftmost standalone letter, else the letter after ``ANSWER`` (so ``ANSWERD`` is D)."""
    if choices not in _CHOICE_RES:
        letters = re.escape(choices)
        _CHOICE_RES[choices] = (re.compile(rf"\b([{letters}])\b"), re.compile(rf"ANSWER\s*[:\-]?\s*([{letters}])"))
    for pattern in _CHOICE_RES[choices]:
        match = pattern.search(text_upper)
        if match:
            return match.group(1)
    return None


def csqa_choice(text: str) -> str | None:
    """X-CSQA, both Phase 3 extractors: the first line, upper-cased, letters A-E."""
    return _choice(first_line(text.strip().upper()), "ABCDE")


def belebele_choice(text: str) -> str | None:
    """Belebele, both Phase 3 extractors: as X-CSQA with letters A-D."""
    return _choice(first_line(text.strip().upper()), "ABCD")


def csqa_phase2(text: str) -> str | None:
    """Phase 2 X-CSQA: the same letter rules over the whole output, not just its first line."""
    return _choice(text.strip().upper(), "ABCDE")


# ----------------------------------------- SIB-200 -------------------------------------------


def sib200_strict(text: str) -> str | None:
    """Rules A, B, C, then the first canonical name contained in the line, then an exact alias.

    Lenient by design of the original: ``science/health`` is science/technology (Rule A) and
    ``sports and health`` is sports (scan order), where the refined extractor calls both a hedge.
    """
    line = first_line(text).strip(STRICT_SIB200_STRIP).lower()
    if line.startswith(("science/", "science /")):
        return _S
    if any(phrase in line for phrase in SIB200_SCITECH_NATIVE):
        return _S
    if line in SIB200_SCITECH_BARE_SUBCATEGORIES:
        return _S
    for category in SIB200_CATEGORIES:
        if category in line:
            return category
    return SIB200_ALIASES.get(line)


def sib200_split(line: str) -> list[str]:
    """Pieces of a compound answer: conjunctions become ``/`` (case-sensitively), then split."""
    for conjunction in SIB200_CONJUNCTIONS:
        line = line.replace(conjunction, "/")
    pieces = (piece.strip().strip(SIB200_STRIP).strip() for piece in _SIB200_SEPARATORS.split(line))
    return [piece for piece in pieces if piece]


def sib200_refined(text: str) -> str | None:
    """Exactly one category, or None: an answer naming two categories is a hedge, not a hit.

    Pieces are looked up in :data:`SIB200_TERM_TO_CATEGORY` (native forms included); with no
    known piece, a single canonical English name contained anywhere in the line still counts
    (plain substring, which also catches ``答案是travel``).
    """
    line = first_line(text).strip(SIB200_STRIP)
    if not line:
        return None
    found = {SIB200_TERM_TO_CATEGORY.get(piece.lower()) for piece in sib200_split(line)} - {None}
    if not found:
        line_lower = line.lower()
        found = {category for category in SIB200_CATEGORIES if category in line_lower}
    return found.pop() if len(found) == 1 else None


# ------------------------------------------ MGSM ---------------------------------------------


def mgsm_last_number(text: str) -> str | None:
    """The last number of the whole output, commas dropped; compared as a string with the gold.

    Also the gold's normalisation (:func:`normalize_number_string`), so ``18.0`` is not ``18``.
    """
    matches = _MGSM_NUMBER.findall(text.replace(",", ""))
    return matches[-1] if matches else None


def normalize_number_string(answer: object) -> str | None:
    """MGSM gold: the extractor's rule on ``str(answer).strip()``."""
    return mgsm_last_number(str(answer).strip())


# ---------------------------------------- registry -------------------------------------------


@dataclass(frozen=True)
class Extractor:
    """One (extractor, benchmark) pair; ``version`` goes into every output it scores."""

    name: str
    benchmark: str
    version: str
    extract: Callable[[str], str | None]

    def __call__(self, text: str) -> str | None:
        return self.extract(text)


_FUNCTIONS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "strict": {"xnli": xnli_strict, "csqa": csqa_choice, "sib200": sib200_strict, "belebele": belebele_choice},
    "refined": {"xnli": xnli_refined, "csqa": csqa_choice, "sib200": sib200_refined, "belebele": belebele_choice},
    "phase2": {"xnli": xnli_phase2_v2, "csqa": csqa_phase2, "mgsm": mgsm_last_number},
    "phase2-v1": {"xnli": xnli_phase2_v1},
    "phase2-v0": {"xnli": xnli_phase2_v0},
}
_VERSIONS = {name: f"{name}-1.0" for name in _FUNCTIONS}

EXTRACTOR_NAMES = tuple(_FUNCTIONS)

REGISTRY: dict[tuple[str, str], Extractor] = {
    (name, benchmark): Extractor(name, benchmark, _VERSIONS[name], function)
    for name, functions in _FUNCTIONS.items()
    for benchmark, function in functions.items()
}


def get_extractor(name: str, benchmark: str) -> Extractor:
    """The registered extractor, or a KeyError that lists what exists for that benchmark."""
    try:
        return REGISTRY[(name, benchmark)]
    except KeyError:
        available = sorted(n for n, b in REGISTRY if b == benchmark)
        raise KeyError(f"no {name!r} extractor for {benchmark!r}; available: {', '.join(available) or 'none'}") from None


def source_sha256() -> str:
    """sha256 of this file's bytes: every rule and term table lives here, so it pins the scoring."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
