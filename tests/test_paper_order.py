"""One paper order for every report table and figure: conditions as the paper lists them, then benchmarks
and languages in the study's order, values another phase adds after them."""

from __future__ import annotations

import pandas as pd

from stages.lib import analyses, paper_order
from stages.lib.results_index import condition_sort

# shuffled on purpose: alphabetical order would put 20k before 5k and es/ur/zh in that order
CONDITIONS = ["condition-2-zh-5k", "condition-1-en-20k", "condition-5-ur-5k-c4ai-aya-expanse-32b", "not-a-condition",
              "condition-2-ur-20k", "baseline", "condition-3-zh-5k-native-code", "condition-2-es-5k",
              "condition-1-en-5k", "condition-2-zh-20k"]
PAPER = ["baseline", "condition-1-en-5k", "condition-1-en-20k", "condition-2-es-5k", "condition-2-zh-5k",
         "condition-2-zh-20k", "condition-2-ur-20k", "condition-3-zh-5k-native-code",
         "condition-5-ur-5k-c4ai-aya-expanse-32b", "not-a-condition"]


def test_conditions_come_in_the_papers_order_and_unknown_names_last():
    frame = pd.DataFrame({"condition": CONDITIONS, "row": range(len(CONDITIONS))})
    assert paper_order.sort_rows(frame, ["condition"])["condition"].tolist() == PAPER
    assert sorted(CONDITIONS, key=condition_sort) == PAPER


def test_benchmarks_and_languages_in_the_studys_order_pooled_first_others_after():
    frame = pd.DataFrame({
        "benchmark": ["mgsm", "belebele", "xnli", "csqa", "sib200", "belebele"],
        "data": ["ur", "de", "ALL", "zh", "es", "en"],
    })
    out = paper_order.sort_rows(frame, ["benchmark", "data"])
    assert out["benchmark"].tolist() == ["sib200", "xnli", "csqa", "belebele", "belebele", "mgsm"]
    assert out["data"].tolist() == ["es", "ALL", "zh", "en", "de", "ur"]
    assert paper_order.sort_rows(frame, ["data"])["data"].tolist() == ["ALL", "en", "es", "zh", "ur", "de"]
    # a phase's own benchmark list decides their order
    phase2 = paper_order.sort_rows(frame, ["benchmark"], benchmarks=("mgsm", "xnli"))
    assert phase2["benchmark"].tolist()[:2] == ["mgsm", "xnli"]


def test_ties_keep_their_order_and_other_columns_sort_as_they_are():
    frame = pd.DataFrame({"condition": ["condition-2-es-5k", "baseline", "condition-2-es-5k", "baseline"],
                          "seed": ["456", "none", "42", "none"], "row": [0, 1, 2, 3]})
    out = paper_order.sort_rows(frame, ["condition"])
    assert out["row"].tolist() == [1, 3, 0, 2]
    assert paper_order.sort_rows(frame, ["condition", "seed"])["seed"].tolist() == ["none", "none", "42", "456"]
    assert out.index.tolist() == [0, 1, 2, 3]


def test_the_same_language_comparison_lists_conditions_in_the_papers_order():
    cells = pd.DataFrame([{"condition": c, "seed": "42", "template": "1", "benchmark": "xnli", "data_lang": "es",
                           "instr_lang": "es", "acc_refined": 0.5, "n": 10}
                          for c in reversed(PAPER[:-1])])
    out = analyses.same_language_comparison(analyses.framework_cells(cells))
    es = out[out["target_lang"] == "es"]["condition"].tolist()
    assert es == ["baseline", "condition-1-en-5k", "condition-1-en-20k", "condition-2-es-5k"]
    zh = out[out["target_lang"] == "zh"]["condition"].tolist()
    assert zh[3:] == ["condition-2-zh-5k", "condition-2-zh-20k", "condition-3-zh-5k-native-code"]
