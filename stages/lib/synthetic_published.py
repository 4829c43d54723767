"""A small, seeded tree in the published layout with planted effects, for differential checks.

:func:`write_tree` writes ``phase3/conditions/<condition>/seed<N|none>/`` with a ``_results_`` and a
``_summary_`` file per session and template: the original's 21 sessions
and full cell grid (1,664 cells), a few rows per cell, so that the original's scripts and the
project's reparse and report can be run on the same inputs in seconds. Same seed, same bytes.

What is planted, so that every comparison has something to disagree about:

- condition effects: cond 2 gains on its own language, cond 1 a little everywhere, cond 5 loses
  on SIB-200; per-seed and per-template noise; three seeds for the 5k conditions of cond 1 and 2;
- messy answers the refined extractor rescues: native-script SIB-200 categories and XNLI labels,
  CJK-glued labels (Tier 2), paraphrases (Tier 3), a second line of explanation;
- answers the strict extractor over-credits: hedges naming two categories (strict takes one), most
  of the wrong answers of :data:`OVER_CREDIT`, whose SIB-200 Δ vs baseline flips sign under refined;
- label bias: wrong XNLI answers lean to entailment and rarely say neutral;
- constant answers: cond 5 often gives the same native science/technology form whatever the passage.

The strict ``pred``/``correct`` and the ``_summary_`` numbers are the project's strict extractor's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from stages.lib import extractors
from stages.lib.paths import condition_parts, eval_folder, result_file_name
from stages.lib.results_index import BASELINE, expected_cells

SESSIONS = (
    (BASELINE, "none"),
    *(("condition-1-en-5k", s) for s in ("42", "123", "456")),
    ("condition-1-en-20k", "42"),
    *((f"condition-2-{lang}-5k", s) for lang in ("es", "zh", "ur") for s in ("42", "123", "456")),
    *((f"condition-2-{lang}-20k", "42") for lang in ("es", "zh", "ur")),
    ("condition-3-zh-5k", "42"),
    *((f"condition-5-{lang}-5k", "42") for lang in ("es", "zh", "ur")),
)
ROWS = {"sib200": 14, "xnli": 12, "csqa": 10, "belebele": 8}  # per cell: a multiple of the gold classes
BASE_ACC = {"sib200": 0.55, "xnli": 0.45, "csqa": 0.5, "belebele": 0.45}
TEXT_FIELDS = {"sib200": ("text",), "xnli": ("premise", "hypothesis"), "csqa": ("stem",), "belebele": ("passage", "question")}
CHOICES = {"csqa": "ABCDE", "belebele": "ABCD"}
# SIB-200 sign flips (tab:sib200-sign-flips): worse under refined, hedges that strict credits
OVER_CREDIT = ("condition-2-ur-20k", "condition-2-es-5k")

# native surface forms per language, from the extractors' own term tables
_SIB_NATIVE = {
    "zh": {"science/technology": "\u79d1\u5b66/\u6280\u672f", "travel": "\u65c5\u884c", "politics": "\u653f\u6cbb",
           "sports": "\u4f53\u80b2", "entertainment": "\u5a31\u4e50", "geography": "\u5730\u7406"},
    "es": {"science/technology": "ciencia y tecnolog\u00eda", "travel": "viajes", "politics": "pol\u00edtica",
           "sports": "deportes", "health": "salud", "entertainment": "entretenimiento"},
    "ur": {"science/technology": "\u0633\u0627\u0626\u0646\u0633/\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc",
           "travel": "\u0633\u0641\u0631", "politics": "\u0633\u06cc\u0627\u0633\u062a", "sports": "\u06a9\u06be\u06cc\u0644",
           "health": "\u0635\u062d\u062a", "entertainment": "\u062a\u0641\u0631\u06cc\u062d"},
}
_XNLI_NATIVE = {
    "zh": {"entailment": "\u8574\u542b", "contradiction": "\u77db\u76fe", "neutral": "\u4e2d\u7acb"},
    "es": {"entailment": "implicaci\u00f3n", "contradiction": "contradicci\u00f3n", "neutral": "neutro"},
    "ur": {"entailment": "\u0644\u0627\u0632\u0645\u06cc", "contradiction": "\u062a\u0631\u062f\u06cc\u062f",
           "neutral": "\u063a\u06cc\u0631\u062c\u0627\u0646\u0628\u062f\u0627\u0631"},
}
_XNLI_PARAPHRASE = {"neutral": "\u4e24\u8005\u6ca1\u6709\u4efb\u4f55\u5173\u7cfb", "contradiction": "\u8fd9\u662f\u5426\u5b9a\u7684",
                    "entailment": "\u8fd9\u662f\u4e00\u4e2a\u63a8\u8bba"}
_CONSTANT = "\u0633\u0627\u0626\u0646\u0633/\u062a\u06a9\u0646\u0627\u0644\u0648\u062c\u06cc"  # سائنس/تکنالوجی
_GARBAGE = ("???", "I am not sure", "\u6ca1\u6709entailment", "")


def accuracy(condition: str, seed: str, template: int, bench: str, data: str, instr: str, rng: random.Random) -> float:
    """The planted probability of a right answer in one cell."""
    info = condition_parts(condition)
    p = BASE_ACC[bench] + (0.05 if template == 1 else -0.03) + (0.04 if data == "en" else 0.0)
    if info["number"] == 1:
        p += 0.05
    elif info["number"] == 2 and instr == info["lang"]:
        p += 0.15 if bench in ("sib200", "xnli") else 0.05
    elif info["number"] == 5 and bench == "sib200":
        p -= 0.12
    if condition in OVER_CREDIT and bench == "sib200":
        p -= 0.15
    if info["tier"] == "20k":
        p += 0.03
    if seed != "none":
        p += rng.uniform(-0.06, 0.06)
    return min(max(p, 0.05), 0.95)


def _sib_answer(gold: str, right: bool, instr: str, constant: bool, over_credit: bool, rng: random.Random) -> str:
    if constant and rng.random() < 0.5:
        return _CONSTANT
    later = extractors.SIB200_CATEGORIES[extractors.SIB200_CATEGORIES.index(gold) + 1:]
    if not right and over_credit and later and rng.random() < 0.8:
        return f"{gold}, {rng.choice(later)}"  # strict's canonical scan finds the gold first; refined: two, so none
    if not right:
        kind = rng.random()
        if kind < 0.15:
            return rng.choice(_GARBAGE)
        if kind < 0.3:  # a hedge: strict takes a category, refined none
            return f"{gold}, {rng.choice([c for c in extractors.SIB200_CATEGORIES if c != gold])}"
        return rng.choice([c for c in extractors.SIB200_CATEGORIES if c != gold])
    native = _SIB_NATIVE.get(instr, {}).get(gold)
    kind = rng.random()
    if native and kind < 0.4:
        return native
    if kind < 0.55:
        return f"Category: {gold}\nThe passage is about {gold}."
    return gold.title() if kind < 0.7 else gold


def _xnli_answer(gold: str, right: bool, instr: str, rng: random.Random) -> str:
    label = gold if right else rng.choices([l for l in extractors.XNLI_LABELS if l != gold],
                                           weights=[3 if l == "entailment" else 1 if l == "contradiction" else 0.3
                                                    for l in extractors.XNLI_LABELS if l != gold])[0]
    kind = rng.random()
    if kind < 0.1:
        return rng.choice(_GARBAGE)
    if kind < 0.3 and instr in _XNLI_NATIVE:
        return _XNLI_NATIVE[instr][label]
    if kind < 0.4:
        return f"\u7b54\u6848\u662f{label}"  # 答案是<label>: glued, Tier 2
    if kind < 0.5:
        return _XNLI_PARAPHRASE[label]
    return f"{label.title()}.\nBecause the premise says so." if kind < 0.7 else label


def _choice_answer(gold: str, right: bool, bench: str, rng: random.Random) -> str:
    letter = gold if right else rng.choice([c for c in CHOICES[bench] if c != gold])
    kind = rng.random()
    if kind < 0.1:
        return rng.choice(_GARBAGE)
    if kind < 0.2:
        return f"\u7b54\u6848\u662f{letter}"  # glued: no \b, a parse failure under both extractors
    return f"The answer is {letter}" if kind < 0.5 else letter


def cell_rows(condition: str, seed: str, template: int, bench: str, data: str, instr: str, rng: random.Random) -> list[dict]:
    p = accuracy(condition, seed, template, bench, data, instr, rng)
    constant = condition_parts(condition)["number"] == 5
    classes = {"sib200": extractors.SIB200_CATEGORIES, "xnli": extractors.XNLI_LABELS}.get(bench) or tuple(CHOICES.get(bench, ""))
    strict = extractors.get_extractor("strict", bench)
    rows = []
    for i in range(ROWS[bench]):
        gold = classes[i % len(classes)]
        right = rng.random() < p
        if bench == "sib200":
            raw = _sib_answer(gold, right, instr, constant, condition in OVER_CREDIT, rng)
        elif bench == "xnli":
            raw = _xnli_answer(gold, right, instr, rng)
        else:
            raw = _choice_answer(gold, right, bench, rng)
        pred = strict(raw)
        row = {field: f"{bench} {data} example {i} {field}" for field in TEXT_FIELDS[bench]}
        row.update({"template": f"template{template}", "instruction_lang": instr, "raw_output": raw, "pred": pred,
                    "gold": gold, "correct": pred == gold})
        rows.append(row)
    return rows


def session_bodies(condition: str, seed: str, template: int, rng: random.Random) -> tuple[dict, dict]:
    """(results body, summary body) of one session and template."""
    cells, summary, rates = {}, {}, {}
    for t, bench, data, instr in expected_cells(condition):
        if t != template:
            continue
        key = f"template{t}_{bench}_data={data}_instr={instr}"
        rows = cell_rows(condition, seed, t, bench, data, instr, rng)
        cells[key] = rows
        summary[f"{key}_acc"] = sum(r["correct"] for r in rows) / len(rows)
        rates[key] = sum(r["pred"] is None for r in rows) / len(rows)
    return {"summary": summary, "parse_failure_rates": rates, **cells}, {"summary": summary, "parse_failure_rates": rates}


def write_tree(root: Path | str, seed: int = 0) -> Path:
    """Write the tree under ``root`` (which it creates); returns ``root``."""
    root = Path(root)
    for condition, session_seed in SESSIONS:
        seed_value = None if session_seed == "none" else int(session_seed)
        folder = root / eval_folder("phase3", condition, seed_value)
        folder.mkdir(parents=True, exist_ok=True)
        for template in (1, 2):
            rng = random.Random(f"{seed}/{condition}/{session_seed}/{template}")
            results, summary = session_bodies(condition, session_seed, template, rng)
            for kind, body in (("results", results), ("summary", summary)):
                (folder / result_file_name(condition, seed_value, kind, f"template{template}")).write_text(
                    json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    return root
