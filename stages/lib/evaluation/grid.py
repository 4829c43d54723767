"""The cells one evaluation session scores, in the original's loop order
(template, data language, instruction language, benchmark).

A session is the baseline or one run of the grid. Its cells are every template wording x data
language x instruction language x benchmark, where the baseline and English-trained runs get every
instruction language and the other runs English plus their own language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from stages.lib import results
from stages.lib.evaluation import EvaluateError
from stages.lib.params import Evaluate, Params

@dataclass(frozen=True)
class Session:
    id: str
    condition: str
    seed: int | None
    data_lang: str | None  # the run's training language; None for the baseline
    adapter: str | None  # subfolder under models/, as the seed card loads it


def session_of(params: Params, session_id: str) -> Session:
    """The session as params declare it: its published condition folder and seed are data
    (``evaluate.sessions``, made by params.evaluation_sessions), never split out of the run id."""
    if session_id not in params.evaluate.sessions:
        raise EvaluateError(
            f"params.yaml: evaluate.sessions has no {session_id!r} (has {', '.join(params.evaluate.sessions)})"
        )
    spec = params.evaluate.sessions[session_id]
    data_lang = params.runs[session_id].data_lang if spec.adapter else None
    return Session(session_id, spec.condition, spec.seed, data_lang, spec.adapter)


def instr_langs(session: Session, evaluate: Evaluate) -> list[str]:
    """Baseline and English-trained runs: every instruction language; others: English and their own."""
    if session.data_lang is None or session.data_lang == evaluate.anchor_lang:
        return list(evaluate.instr_langs)
    return [lang for lang in evaluate.instr_langs if lang in (evaluate.anchor_lang, session.data_lang)]


@dataclass(frozen=True)
class Job:
    """One cell to score: ``key`` names it in the resume folder; ``group`` is the output file
    (a template in Phase 3, ``english``/``native`` in Phase 2) and ``cell_key`` its key there."""

    key: str
    wording: str
    benchmark: str
    data_lang: str
    instr_lang: str
    group: str
    cell_key: str


PHASE2_PROMPTS = ("english", "native")  # english_prompt_results.json, native_prompt_results.json


def jobs(session: Session, evaluate: Evaluate) -> list[Job]:
    """Phase 3: the cells below. Phase 2: every session scores the same
    benchmark x data-language cells twice, with the English template and with the data
    language's own, in the published files' key order (benchmark, then language)."""
    if evaluate.protocol == "phase3":
        return [
            Job(c.key, c.template, c.benchmark, c.data_lang, c.instr_lang, c.template, c.key)
            for c in cells(session, evaluate, evaluate.templates)
        ]
    (wording,) = evaluate.templates
    return [
        Job(f"{kind}_prompt_{bench}_{data}", wording, bench, data, evaluate.anchor_lang if kind == "english" else data,
            kind, f"{bench}_{data}")
        for kind in PHASE2_PROMPTS
        for bench in evaluate.benchmarks
        for data in evaluate.data_langs
    ]


def cells(session: Session, evaluate: Evaluate, wordings: Sequence[str]) -> list[results.Cell]:
    """The session's cells in the original's loop order: template, data, instruction, benchmark."""
    return [
        results.Cell(wording, bench, data, instr)
        for wording in wordings
        for data in evaluate.data_langs
        for instr in instr_langs(session, evaluate)
        for bench in evaluate.benchmarks
    ]

