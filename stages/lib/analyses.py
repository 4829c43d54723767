"""The four analyses the original published beside its tables, as pure functions over tidy tables.

Each reproduces one of the original's analysis scripts on the same per-row or per-cell results,
with its file name, columns, row order and number format (floats at 4 dp; the framework's
differences signed, ``+0.0123``), so that run on the published experiments they regenerate
``published/*.tsv`` of the original analysis:

- :func:`xnli_label_distributions` (``build_xnli_label_bias.py`` → ``xnli-label-distributions.tsv``):
  per (cell, gold label) the refined predictions and the extractor tier that matched each. The
  label-bias reading is ``edge = acc − parsed_share/3`` (gold is balanced), so Δacc = Δparsed/3 + Δedge;
- :func:`sib200_category_accuracy` (``build_sib200_category_breakdown.py``): per (cell, gold category)
  the predicted categories, whether a dominant answer is given whatever the passage or only where it fits;
- :func:`correct_via_constant` (``build_correct_via_constant.py``): how much of a SIB-200 cell's
  accuracy its most common answer (refined category, or first raw line) explains;
- :func:`template_comparison`, :func:`same_language_comparison`, :func:`data_volume_comparison`
  (``build_framework_comparison.py``'s three axes) on the refined per-cell accuracies.

Row inputs (:func:`stages.lib.results_index.load_rows`): one row per example, columns ``condition,
seed, template, benchmark, data_lang, instr_lang, gold, raw_output`` in dataset order (ties of
"most common" go to the answer seen first, as ``Counter.most_common`` does). Cell inputs: the
report's runs (``acc_refined``, ``n``). Conditions are recognised by number, language and size
(``paths.condition_parts``), so the project's longer names (``condition-5-zh-5k-c4ai-aya-expanse-32b``)
take the roles of the published ones.

Kept as the original: the XNLI and SIB-200 breakdowns cover the original's default condition sets
(:data:`XNLI_BIAS_CONDITIONS`, :data:`SIB200_BREAKDOWN_CONDITIONS`); a row whose gold is outside the
label set is left out of its cell's slices (the original warns and skips); ``seed`` is ``none`` or the
number, sorted as text. Differs: the seed is the file name's (misfiled copies dropped by the
report's discovery), where the original takes the folder's; the same on every published file.
"""

from __future__ import annotations

import functools
import re
import statistics
from collections import Counter
from typing import Iterable

import pandas as pd

from stages.lib import extractors
from stages.lib.paths import condition_parts
from stages.lib.results_index import BASELINE, ReportError, condition_sort

SIB200_CATEGORIES = extractors.SIB200_CATEGORIES
XNLI_LABELS = extractors.XNLI_LABELS  # entailment, contradiction, neutral: the original's slice order
# (number, lang, tier); (0, None, None) is the baseline
XNLI_BIAS_CONDITIONS = ((0, None, None), (1, "en", "5k"), (2, "ur", "5k"), (2, "es", "5k"), (2, "zh", "5k"),
                        (5, "ur", "5k"), (5, "es", "5k"), (5, "zh", "5k"))
SIB200_BREAKDOWN_CONDITIONS = ((0, None, None), (2, "ur", "5k"), (5, "ur", "5k"), (5, "es", "5k"))
# U+3000 is whitespace, not CJK framing: the range starts at U+3001
CJK = re.compile("[\u3001-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WHITESPACE = re.compile(r"\s+")
CELL_KEYS = ["condition", "seed", "template", "data_lang", "instr_lang"]

XNLI_COLUMNS = ["condition", "seed", "template", "benchmark", "data_lang", "instr_lang", "extractor", "gold", "n_gold",
                "pred_entailment", "pred_neutral", "pred_contradiction", "pred_none", "acc_on_gold",
                *(f"via_{tier}" for tier in extractors.XNLI_TIERS), "tier2_pred_entailment", "tier2_cjk_frame"]
SIB200_COLUMNS = ["condition", "seed", "template", "benchmark", "data_lang", "instr_lang", "extractor", "gold_category",
                  "n_gold", "correct", "acc_on_gold", *(f"pred_{c.replace('/', '_')}" for c in SIB200_CATEGORIES),
                  "pred_none"]
CONSTANT_COLUMNS = ["condition", "seed", "template", "data_lang", "instr_lang", "n", "accuracy", "top_pred",
                    "top_pred_count", "top_pred_share", "top_raw", "top_raw_count", "top_raw_share", "correct_count",
                    "correct_via_constant_pred_count", "correct_via_constant_pred_pct", "correct_via_constant_raw_count",
                    "correct_via_constant_raw_pct"]
TEMPLATE_COLUMNS = ["condition", "seed", "benchmark", "data", "instr", "matched_instr", "matched_diagonal", "t1_acc",
                    "t2_acc", "delta_t2_t1", "t1_count", "t2_count", "t1_correct", "t2_correct"]
SAME_LANGUAGE_COLUMNS = ["target_lang", "template", "benchmark", "data", "instr", "matched_diagonal", "condition",
                         "data_volume", "matched_instr_for_this_condition", "mean_acc_across_seeds", "n_seeds"]
DATA_VOLUME_COLUMNS = ["target_lang", "family", "template", "benchmark", "data", "instr", "matched_instr",
                       "matched_diagonal", "acc_5k_mean", "n_seeds_5k", "acc_20k_mean", "n_seeds_20k", "delta_20k_minus_5k"]
# the columns each writer prints at 4 dp (every other column is text or a count)
FOUR_DP = {
    "xnli": ["acc_on_gold"], "sib200": ["acc_on_gold"],
    "constant": ["accuracy", "top_pred_share", "top_raw_share", "correct_via_constant_pred_pct", "correct_via_constant_raw_pct"],
    "template": ["t1_acc", "t2_acc"], "same_language": ["mean_acc_across_seeds"], "data_volume": ["acc_5k_mean", "acc_20k_mean"],
}
OUTPUTS = {  # report file name -> (analysis, FOUR_DP key)
    "xnli-label-distributions.tsv": "xnli",
    "sib200-category-accuracy.tsv": "sib200",
    "correct-via-constant-rates.tsv": "constant",
    "framework_template_comparison.tsv": "template",
    "framework_same_language_comparison.tsv": "same_language",
    "framework_data_volume_comparison.tsv": "data_volume",
}


def role(condition: str) -> tuple:
    """(number, lang, tier) of a condition; the baseline is (0, None, None)."""
    info = condition_parts(condition)
    return (info["number"], info["lang"], info["tier"])


def _cells(rows: pd.DataFrame, benchmark: str, roles: Iterable[tuple] | None = None):
    """(cell key, rows of the cell) for one benchmark in the original's order, rows in dataset order."""
    part = rows[rows["benchmark"] == benchmark]
    if roles is not None:
        wanted = set(roles)
        conditions = [c for c in part["condition"].unique() if role(c) in wanted]  # a few names for 10^6 rows
        part = part[part["condition"].isin(conditions)]
    if part.empty:
        return
    groups = part.groupby(CELL_KEYS, sort=False)
    for key in sorted(groups.groups, key=lambda k: (k[0], str(k[1]), int(k[2]), k[3], k[4])):
        yield key, groups.get_group(key)


def _gold_and_raw(cell: pd.DataFrame):
    """(gold, raw output) of each row; lists first, since iterating a pandas string column is slow per item."""
    return zip(cell["gold"].tolist(), cell["raw_output"].tolist())


def _xnli_tier_and_frame(raw: str) -> tuple:
    """The refined label, its tier, and whether a Tier 2 match sits in a CJK frame."""
    pred, tier = extractors.xnli_refined_tier(raw)
    return pred, tier, tier == "tier2_glued" and bool(CJK.search(extractors.first_line(raw)))


def _head(key: tuple, benchmark: str) -> dict:
    condition, seed, template, data, instr = key
    return {"condition": condition, "seed": str(seed), "template": int(template), "benchmark": benchmark,
            "data_lang": data, "instr_lang": instr, "extractor": "refined"}


def xnli_label_distributions(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (XNLI cell, gold label): refined predictions, how each was matched, and Tier 2's entailment/CJK share."""
    out = []
    refined = functools.cache(_xnli_tier_and_frame)  # per raw output, for this call: the rules are pure
    for key, cell in _cells(rows, "xnli", XNLI_BIAS_CONDITIONS):
        preds = {g: Counter() for g in XNLI_LABELS}
        tiers = {g: Counter() for g in XNLI_LABELS}
        for gold, raw in _gold_and_raw(cell):
            if gold not in preds:
                continue
            pred, tier, cjk_frame = refined(raw)
            preds[gold][pred] += 1
            tiers[gold][tier] += 1
            if tier == "tier2_glued":
                tiers[gold]["t2_entailment"] += pred == "entailment"
                tiers[gold]["t2_cjk"] += cjk_frame
        for gold in XNLI_LABELS:
            c, t = preds[gold], tiers[gold]
            n_gold = sum(c.values())
            out.append({**_head(key, "xnli"), "gold": gold, "n_gold": n_gold, "pred_entailment": c["entailment"],
                        "pred_neutral": c["neutral"], "pred_contradiction": c["contradiction"], "pred_none": c[None],
                        "acc_on_gold": c[gold] / n_gold if n_gold else 0.0,
                        **{f"via_{tier}": t[tier] for tier in extractors.XNLI_TIERS},
                        "tier2_pred_entailment": t["t2_entailment"], "tier2_cjk_frame": t["t2_cjk"]})
    return pd.DataFrame(out, columns=XNLI_COLUMNS)


def sib200_category_accuracy(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (SIB-200 cell, gold category): the refined predicted categories (None as ``pred_none``)."""
    out = []
    refined = functools.cache(extractors.sib200_refined)  # per raw output, for this call
    for key, cell in _cells(rows, "sib200", SIB200_BREAKDOWN_CONDITIONS):
        preds = {g: Counter() for g in SIB200_CATEGORIES}
        for gold, raw in _gold_and_raw(cell):
            if gold in preds:
                preds[gold][refined(raw)] += 1
        for gold in SIB200_CATEGORIES:
            c = preds[gold]
            n_gold = sum(c.values())
            out.append({**_head(key, "sib200"), "gold_category": gold, "n_gold": n_gold, "correct": c[gold],
                        "acc_on_gold": c[gold] / n_gold if n_gold else 0.0,
                        **{f"pred_{cat.replace('/', '_')}": c[cat] for cat in SIB200_CATEGORIES}, "pred_none": c[None]})
    return pd.DataFrame(out, columns=SIB200_COLUMNS)


def raw_answer(raw: str) -> str:
    """The first raw line with whitespace runs folded: "same answer, other filler" counts as one answer."""
    return WHITESPACE.sub(" ", raw.split("\n", 1)[0]).strip()


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def correct_via_constant(rows: pd.DataFrame) -> pd.DataFrame:
    """Per SIB-200 cell: the most common refined category and first raw line, and how many correct rows they are."""
    out = []
    refined = functools.cache(lambda raw: (extractors.sib200_refined(raw), raw_answer(raw)))  # for this call
    for key, cell in _cells(rows, "sib200"):
        n = len(cell)
        preds, raws, hits = Counter(), Counter(), []
        for gold, raw in _gold_and_raw(cell):
            pred, answer = refined(raw)
            if pred is not None:
                preds[pred] += 1
            if answer:
                raws[answer] += 1
            if pred is not None and pred == gold:
                hits.append((pred, answer))
        top_pred, top_pred_count = preds.most_common(1)[0] if preds else ("", 0)
        top_raw, top_raw_count = raws.most_common(1)[0] if raws else ("", 0)
        via_pred = sum(p == top_pred for p, _ in hits) if top_pred else 0
        via_raw = sum(a == top_raw for _, a in hits) if top_raw else 0
        condition, seed, template, data, instr = key
        out.append({"condition": condition, "seed": str(seed), "template": int(template), "data_lang": data,
                    "instr_lang": instr, "n": n, "accuracy": len(hits) / n, "top_pred": top_pred,
                    "top_pred_count": top_pred_count, "top_pred_share": top_pred_count / n, "top_raw": top_raw,
                    "top_raw_count": top_raw_count, "top_raw_share": top_raw_count / n, "correct_count": len(hits),
                    "correct_via_constant_pred_count": via_pred, "correct_via_constant_pred_pct": _share(via_pred, len(hits)),
                    "correct_via_constant_raw_count": via_raw, "correct_via_constant_raw_pct": _share(via_raw, len(hits))})
    return pd.DataFrame(out, columns=CONSTANT_COLUMNS)


# --- the comparison framework's three axes (refined per-cell accuracies) --------------------------------


def framework_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """The report's runs as the framework reads them: refined acc, count, correct, and each condition's role."""
    cells = runs.dropna(subset=["acc_refined"])
    if cells["n"].isna().any():
        bad = cells[cells["n"].isna()].iloc[0]
        raise ReportError(f"framework comparison: {bad['condition']} seed{bad['seed']} template{bad['template']} "
                          f"{bad['benchmark']} data={bad['data_lang']} instr={bad['instr_lang']} has no row count")
    roles = cells["condition"].map(role)
    return pd.DataFrame({
        "condition": cells["condition"], "seed": cells["seed"].astype(str), "template": cells["template"].astype(str),
        "benchmark": cells["benchmark"], "data": cells["data_lang"], "instr": cells["instr_lang"],
        "acc": cells["acc_refined"].astype(float), "count": cells["n"].astype(int),
        "correct": (cells["acc_refined"] * cells["n"]).round().astype(int),
        "number": roles.map(lambda r: r[0]), "target_lang": roles.map(lambda r: r[1] or ""),
        "data_volume": roles.map(lambda r: r[2] or ""),
    }).reset_index(drop=True)


def _yn(flag: bool) -> str:
    return "y" if flag else "n"


def template_comparison(cells: pd.DataFrame) -> pd.DataFrame:
    """Axis 1: template 1 vs 2 per (condition, seed, benchmark, data, instr), where both ran."""
    keys = ["condition", "seed", "benchmark", "data", "instr"]
    both = cells[cells["template"] == "1"].merge(cells[cells["template"] == "2"], on=keys, suffixes=("_1", "_2"))
    both = both.sort_values(keys).reset_index(drop=True)
    return pd.DataFrame({
        **{k: both[k] for k in keys},
        "matched_instr": [_yn(t != "" and i == t) for t, i in zip(both["target_lang_1"], both["instr"])],
        "matched_diagonal": [_yn(d == i) for d, i in zip(both["data"], both["instr"])],
        "t1_acc": both["acc_1"], "t2_acc": both["acc_2"],
        "delta_t2_t1": [f"{b - a:+.4f}" for a, b in zip(both["acc_1"], both["acc_2"])],
        "t1_count": both["count_1"], "t2_count": both["count_2"], "t1_correct": both["correct_1"], "t2_correct": both["correct_2"],
    }, columns=TEMPLATE_COLUMNS)


def _anchor(r: tuple) -> bool:
    return r in ((0, None, None), (1, "en", "5k"), (1, "en", "20k"))


def same_language_comparison(cells: pd.DataFrame) -> pd.DataFrame:
    """Axis 2: per target language and cell, the anchors (baseline, Cond 1 en 5k/20k) then that language's
    conditions (cond 2 5k, 20k, cond 3, cond 5), each as its mean over seeds."""
    accs: dict[tuple, dict[str, list[float]]] = {}
    for row in cells.itertuples():
        accs.setdefault((row.template, row.benchmark, row.data, row.instr), {}).setdefault(row.condition, []).append(row.acc)
    conditions = sorted(cells["condition"].unique(), key=condition_sort)  # within a language: number, then tier
    out = []
    for target in ("en", "zh", "es", "ur"):
        chosen = [c for c in conditions if _anchor(role(c))] + [
            c for c in conditions if role(c)[1] == target and not _anchor(role(c))]
        for cell in sorted(accs):
            template, bench, data, instr = cell
            for condition in (c for c in chosen if c in accs[cell]):
                r = role(condition)
                out.append({"target_lang": target, "template": template, "benchmark": bench, "data": data, "instr": instr,
                            "matched_diagonal": _yn(data == instr), "condition": condition, "data_volume": r[2] or "",
                            "matched_instr_for_this_condition": _yn(r[1] == instr),
                            "mean_acc_across_seeds": statistics.mean(accs[cell][condition]),
                            "n_seeds": len(accs[cell][condition])})
    return pd.DataFrame(out, columns=SAME_LANGUAGE_COLUMNS)


def data_volume_comparison(cells: pd.DataFrame) -> pd.DataFrame:
    """Axis 3: 5k vs 20k of cond 1 (en) and cond 2 per language and cell, mean over seeds, Δ = 20k − 5k."""
    family = cells[cells["number"].isin((1, 2)) & cells["data_volume"].isin(("5k", "20k"))].copy()
    family["family"] = [f"condition-{n}-{t}" for n, t in zip(family["number"], family["target_lang"])]
    keys = ["target_lang", "family", "template", "benchmark", "data", "instr"]
    out = []
    for key, group in sorted(family.groupby(keys, sort=False), key=lambda kv: kv[0]):
        five, twenty = (group.loc[group["data_volume"] == v, "acc"].tolist() for v in ("5k", "20k"))
        if not (five and twenty):
            continue
        target, fam, template, bench, data, instr = key
        m5, m20 = statistics.mean(five), statistics.mean(twenty)
        out.append({"target_lang": target, "family": fam, "template": template, "benchmark": bench, "data": data,
                    "instr": instr, "matched_instr": _yn(target == instr), "matched_diagonal": _yn(data == instr),
                    "acc_5k_mean": m5, "n_seeds_5k": len(five), "acc_20k_mean": m20, "n_seeds_20k": len(twenty),
                    "delta_20k_minus_5k": f"{m20 - m5:+.4f}"})
    return pd.DataFrame(out, columns=DATA_VOLUME_COLUMNS)


def all_analyses(rows: pd.DataFrame, runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every output of :data:`OUTPUTS`, by file name."""
    cells = framework_cells(runs)
    return {
        "xnli-label-distributions.tsv": xnli_label_distributions(rows),
        "sib200-category-accuracy.tsv": sib200_category_accuracy(rows),
        "correct-via-constant-rates.tsv": correct_via_constant(rows),
        "framework_template_comparison.tsv": template_comparison(cells),
        "framework_same_language_comparison.tsv": same_language_comparison(cells),
        "framework_data_volume_comparison.tsv": data_volume_comparison(cells),
    }
