"""The surface forms the smoke base learns to answer in: clean labels, and the messy forms of the real model.

tiny-aya-base did not answer in clean labels. Its published outputs hold native-script labels
(蕴含, سائنس/ٹیکنالوجی, viajes), glued cues (答案是B, 答案是entailment), paraphrases (假设是前提的否定。),
hedges across categories (science/health, sports and health) and code leakage, in proportions
that differ by the prompt's language. The refined extractor exists for these forms. A smoke base
that answers only in clean labels scores strict and refined alike, so neither the extractors nor
the analyses built on their difference are exercised. So the smoke base's pre-training targets
draw from these forms, with per-language weights, and the model learns the mix only partly. The
smoke forms are shorter than some real ones (科学 for 科学和技术, سائنس for سائنس/ٹیکنالوجی): the
evaluation generates 10 new tokens, and the smoke tokenizer spends up to three on a CJK or Urdu letter.

Each form is a template over the gold answer. Which extractor parses it is a property of the
extractors (``stages.lib.extractors``), checked for every form by ``tests/test_answer_forms.py``:
``clean`` and ``formatted`` forms parse under both, ``refined`` ones only under the refined
extractor, ``hedge`` ones only under the strict one (the refined SIB-200 extractor rejects a
cross-category hedge), ``failure`` ones under neither. X-CSQA and Belebele share one extractor,
so their messy forms are either ``formatted`` (both parse) or ``failure`` (neither does).

Pure data and two pure functions. The weights are per instruction language (the language the
prompt asks in decides the answer's language far more than the data's language does) and per wording
(the first template or the others): a greedy decoder answers in a prompt's most likely form, so
weights that never depended on the prompt would make every answer of a language clean or every one messy.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

KINDS = ("clean", "formatted", "refined", "hedge", "failure")

# weights of each kind, by instruction language (a language not listed uses "en"), under the first
# wording of a benchmark's prompt (WEIGHTS) and under the others (WEIGHTS_OTHER_WORDINGS): the
# format an answer takes follows the prompt, so a greedy base answers messily where the prompt says
# so, rather than always in the one form most frequent overall
WEIGHTS: dict[str, dict[str, float]] = {
    "en": {"clean": 0.65, "formatted": 0.15, "refined": 0.08, "hedge": 0.07, "failure": 0.05},
    "es": {"clean": 0.45, "formatted": 0.15, "refined": 0.25, "hedge": 0.05, "failure": 0.10},
    "zh": {"clean": 0.30, "formatted": 0.10, "refined": 0.40, "hedge": 0.05, "failure": 0.15},
    "ur": {"clean": 0.30, "formatted": 0.10, "refined": 0.40, "hedge": 0.10, "failure": 0.10},
}
WEIGHTS_OTHER_WORDINGS: dict[str, dict[str, float]] = {
    "en": {"clean": 0.25, "formatted": 0.10, "refined": 0.30, "hedge": 0.25, "failure": 0.10},
    "es": {"clean": 0.20, "formatted": 0.10, "refined": 0.40, "hedge": 0.15, "failure": 0.15},
    "zh": {"clean": 0.15, "formatted": 0.10, "refined": 0.50, "hedge": 0.10, "failure": 0.15},
    "ur": {"clean": 0.15, "formatted": 0.10, "refined": 0.50, "hedge": 0.10, "failure": 0.15},
}

XNLI_NATIVE = {  # parsed by both extractors (NATIVE_LABEL_MAP)
    "zh": {"entailment": "蕴含", "neutral": "中立", "contradiction": "矛盾"},
    "es": {"entailment": "implicación", "neutral": "neutro", "contradiction": "contradicción"},
    "ur": {"entailment": "لازمی", "neutral": "غیرجانبدار", "contradiction": "تردید"},
}
XNLI_REFINED = {  # parsed by the refined extractor only (tiers 2 and 3); each within 10 tokens of the smoke tokenizer
    "zh": {"entailment": "这是推论", "neutral": "没有关系", "contradiction": "假设是前提的否定。"},
    "ur": {"neutral": "کوئی تعلق نہیں"},
}
SIB200_NATIVE = {  # the refined extractor's native terms, short enough for 10 new tokens; the strict extractor parses none
    "zh": {"science/technology": "科学", "travel": "旅行", "politics": "政治", "sports": "体育",
           "entertainment": "娱乐", "geography": "地理"},
    "es": {"science/technology": "ciencia", "travel": "viajes", "politics": "política", "sports": "deportes",
           "health": "salud", "entertainment": "entretenimiento"},
    "ur": {"science/technology": "سائنس", "travel": "سفر", "politics": "سیاست", "sports": "کھیل",
           "health": "صحت", "entertainment": "تفریح"},
}
SIB200_HEDGE = {  # the strict extractor takes the first category named; the refined one rejects the hedge
    "science/technology": "science/health", "travel": "travel/health", "politics": "politics, sports",
    "sports": "sports and health", "health": "science/health", "entertainment": "entertainment/travel",
    "geography": "geography and travel",
}
CHOICE_CUE = {  # "the answer is" in the instruction language: parsed by both when the letter stands alone
    "en": "The answer is {gold}", "es": "La respuesta es {gold}", "zh": "答案：{gold}", "ur": "جواب: {gold}",
}
GLUED_CUE = {"zh": "答案是{gold}", "ur": "جواب{gold}", "es": "respuesta{gold}"}  # glued to a word: no standalone letter
CODE_LEAK = "def f(x):"
UNSURE = {"ur": "یہ واضح نہیں", "zh": "不确定"}  # "it is unclear", "not sure"


def _xnli(kind: str, gold: str, lang: str) -> str | None:
    if kind == "clean":
        return gold
    if kind == "formatted":
        return XNLI_NATIVE[lang][gold] if lang in XNLI_NATIVE else gold.capitalize() + "."
    if kind == "refined":
        if gold in XNLI_REFINED.get(lang, {}):
            return XNLI_REFINED[lang][gold]
        if lang == "zh":
            return f"答案是{gold}"  # tier 2: a glued label
        # tier 2: an English suffix form ("neutrals" would hit the native key "neutra" under both)
        return gold + "s" if gold != "neutral" else None
    if kind == "hedge":
        return None  # the XNLI extractors agree on every hedge (label priority order): no such form
    if lang == "zh" and gold != "neutral":  # "neutral" glued would still hit the native key "neutra"
        return f"假设和前提之间没有{gold}或"  # the negation guard keeps the refined extractor off it
    return UNSURE.get(lang, CODE_LEAK)


def _sib200(kind: str, gold: str, lang: str) -> str | None:
    if kind == "clean":
        return gold
    if kind == "formatted":
        return f"Category: {gold}"
    if kind == "refined":
        native = SIB200_NATIVE.get(lang, {}).get(gold)
        if native:
            return native
        return None  # no native term: the clean label instead (答案是health would parse under both)
    if kind == "hedge":
        return SIB200_HEDGE[gold]
    return CODE_LEAK


def _choice(kind: str, gold: str, lang: str) -> str | None:
    if kind == "clean":
        return gold
    if kind == "formatted":
        return CHOICE_CUE.get(lang, CHOICE_CUE["en"]).format(gold=gold)
    if kind == "failure":
        return GLUED_CUE[lang].format(gold=gold) if lang in GLUED_CUE else CODE_LEAK
    return None


FORMS = {"xnli": _xnli, "sib200": _sib200, "csqa": _choice, "belebele": _choice}


def form(benchmark: str, kind: str, gold: str, instr_lang: str) -> str | None:
    """The answer of one ``kind`` for ``gold`` under an ``instr_lang`` prompt, or None where the
    benchmark has no such form (:func:`draw` then leaves that kind out)."""
    if kind not in KINDS:
        raise ValueError(f"answer form kind {kind!r} is not one of {', '.join(KINDS)}")
    maker = FORMS.get(benchmark)
    return gold if maker is None else maker(kind, gold, instr_lang)


def draw(benchmark: str, gold: str, instr_lang: str, rng: random.Random, first_wording: bool = True,
         weights: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """One pre-training answer: a kind drawn by the instruction language's weights (those of the first
    wording or of the others), then its form; a kind with no form for this answer is left out of the draw."""
    table = weights or (WEIGHTS if first_wording else WEIGHTS_OTHER_WORDINGS)
    shares = table.get(instr_lang, table["en"])
    forms = {kind: form(benchmark, kind, gold, instr_lang) for kind in shares}
    kinds = [kind for kind in shares if forms[kind] is not None]
    kind = rng.choices(kinds, weights=[shares[kind] for kind in kinds])[0]
    return forms[kind]
