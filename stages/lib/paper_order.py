"""The study's order for the rows of every report table and the axes of every figure: one sort.

Conditions come as the paper lists them (baseline, then by condition number, language en, es, zh, ur
and tier size: :func:`stages.lib.results_index.condition_sort`, which puts a name outside the study's
grid last), benchmarks as :data:`~stages.lib.results_index.BENCHMARKS` and languages as
:data:`~stages.lib.results_index.LANGS`; a value another phase adds (Phase 2's benchmarks and languages)
sorts after the study's, and the pooled language ``ALL`` before them. Every other column sorts as it is.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd

from stages.lib.results_index import BENCHMARKS, LANGS, condition_sort

LANGUAGE_COLUMNS = ("data", "instr", "data_lang", "instr_lang")
POOLED = "ALL"  # cross_seed_variance's row over every data language


def rank(order: Sequence[str], value: str) -> tuple:
    """A value's place in ``order``; a value outside it sorts after it, by name."""
    return (order.index(value), "") if value in order else (len(order), value)


def language_rank(lang: str) -> tuple:
    return (-1, "") if lang == POOLED else rank(LANGS, lang)


def column_key(column: str, benchmarks: Sequence[str] = BENCHMARKS) -> Callable:
    """The sort key of one column's values in the study's order (the values themselves for other columns)."""
    if column == "condition":
        return condition_sort
    if column == "benchmark":
        return lambda bench: rank(tuple(benchmarks), bench)
    if column in LANGUAGE_COLUMNS:
        return language_rank
    return lambda value: value


def sort_rows(frame: pd.DataFrame, columns: Sequence[str], benchmarks: Sequence[str] = BENCHMARKS,
              keys: Mapping[str, Callable] | None = None) -> pd.DataFrame:
    """``frame``'s rows ordered by ``columns`` in turn, each in the study's order (or by ``keys[column]``
    where given); ties keep their order."""
    ranks = [[(keys or {}).get(c, column_key(c, benchmarks))(v) for v in frame[c].tolist()] for c in columns]
    order = sorted(range(len(frame)), key=lambda i: tuple(r[i] for r in ranks))
    return frame.iloc[order].reset_index(drop=True)
