"""Phase 2 results as one tidy table, and the Phase 2 summary's headline table.

Each Phase 2 session (the baseline and each run, whose id is the condition's name) wrote two files
in its folder, ``english_prompt_results.json`` (instruction language = ``evaluate.anchor_lang``)
and ``native_prompt_results.json`` (instruction language = the data language), each
``{"summary": {"<bench>_<lang>_acc": fraction}, "<bench>_<lang>": [{..., "pred", "gold", "correct"}]}``.

:func:`expected_sessions` names the files the params' sessions must have (no globbing: a session the
params do not list is never read, an absent file is listed). :func:`load_sessions` reads them into
the same tidy frame as Phase 3's (:data:`results_index.RUN_COLUMNS` + ``VALUE_COLUMNS``, template
``"phase2"``, refined and log-likelihood columns empty: Phase 2's tables use the strict extractors
only) plus per-example strict correctness for the paired tests. :func:`summary_table` is that table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from stages.lib.params import Params
from stages.lib.paths import seed_token
from stages.lib.results_index import BASELINE, RUN_COLUMNS, VALUE_COLUMNS, ReportError, display_name, read_json

TEMPLATE = "phase2"  # the template column of runs.csv: Phase 2 had one wording per language
PROMPTS = {"native": "native_prompt_results.json", "english": "english_prompt_results.json"}  # the summary's row order
EVAL_ROOT = PurePosixPath("metrics/eval")  # where params' session folders start; replaced by --eval-dir


@dataclass
class Session:
    """One Phase 2 session: its condition (the run id, or ``baseline``), seed and the files found."""

    condition: str
    seed: str  # "42" for runs, "none" for the baseline
    files: dict[str, Path] = field(default_factory=dict)  # prompt kind -> path


@dataclass(frozen=True)
class Design:
    """What every file should hold: benchmarks × data languages, and the English prompt's language."""

    benchmarks: tuple[str, ...]
    data_langs: tuple[str, ...]
    anchor_lang: str

    @classmethod
    def of(cls, params: Params) -> "Design":
        e = params.evaluate
        return cls(tuple(e.benchmarks), tuple(e.data_langs), e.anchor_lang)

    def instr_lang(self, prompt: str, data_lang: str) -> str:
        return self.anchor_lang if prompt == "english" else data_lang


def _missing(what: str, condition: str, seed: str, detail: str, bench: str = "", data: str = "", instr: str = "") -> dict:
    return {"what": what, "condition": condition, "seed": seed, "template": TEMPLATE, "benchmark": bench,
            "data": data, "instr": instr, "detail": detail}


def session_folder(out: str, eval_dir: Path) -> Path:
    """A session's ``out`` from params (``metrics/eval/phase2/...``) under ``eval_dir`` instead."""
    out_path = PurePosixPath(out)
    try:
        return Path(eval_dir) / out_path.relative_to(EVAL_ROOT)
    except ValueError:
        return Path(out)


def expected_sessions(params: Params, eval_dir: Path | str) -> tuple[list[Session], list[dict]]:
    """The params' sessions in their order, each with the files found; absent files as missing rows."""
    sessions, missing = [], []
    for key, spec in params.evaluate.sessions.items():
        seed = seed_token(spec.seed)
        session = Session(key, seed)
        folder = session_folder(spec.out, Path(eval_dir))
        for prompt, name in PROMPTS.items():
            path = folder / name
            if path.is_file():
                session.files[prompt] = path
            else:
                missing.append(_missing("file", key, seed, f"no {name} in {spec.out}"))
        if session.files:
            sessions.append(session)
    return sessions, missing


def _cell_values(path: Path, key: str, rows: object, summary: dict) -> tuple[float, float, np.ndarray]:
    """(strict accuracy as published, parse-failure rate, per-example correctness) of one cell."""
    if not isinstance(rows, list) or not rows:
        raise ReportError(f"{path}: cell {key!r}: expected a non-empty list of rows")
    try:
        correct = np.array([bool(row["correct"]) for row in rows])
        failures = sum(row["pred"] is None for row in rows)
    except (TypeError, KeyError) as error:
        raise ReportError(f"{path}: cell {key!r}: a row lacks {error}") from None
    acc = summary.get(f"{key}_acc")
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or math.isnan(acc):
        raise ReportError(f"{path}: summary {key}_acc is {acc!r}, not a number")
    return float(acc), failures / len(rows), correct


def load_sessions(sessions: list[Session], design: Design) -> tuple[pd.DataFrame, dict, list[dict], list[str]]:
    """(tidy frame, strict correctness keyed like Phase 3's, missing cells, notes) of every file.

    ``acc_strict`` is the file's summary (the published number; the XNLI re-score's empty-output
    quirk can make it differ from the rows), ``n`` and ``pf_strict`` come from the rows.
    """
    rows, correct, missing, notes = [], {}, [], []
    for session in sessions:
        for prompt, path in session.files.items():
            body = read_json(path)
            summary = body.get("summary")
            if not isinstance(summary, dict):
                raise ReportError(f"{path}: no 'summary' object")
            wanted = {f"{b}_{d}" for b in design.benchmarks for d in design.data_langs}
            extra = sorted(k for k in body if k != "summary" and k not in wanted)
            if extra:
                notes.append(f"{path}: ignored cells outside params' benchmarks x data_langs: {', '.join(extra)}")
            for bench in design.benchmarks:
                for data in design.data_langs:
                    key, instr = f"{bench}_{data}", design.instr_lang(prompt, data)
                    if prompt == "native" and data == design.anchor_lang:
                        continue  # the English-prompt file holds this cell
                    if key not in body:
                        missing.append(_missing("cell", session.condition, session.seed, f"{key} absent from {path.name}",
                                                bench, data, instr))
                        continue
                    acc, pf, vector = _cell_values(path, key, body[key], summary)
                    correct[(session.condition, session.seed, TEMPLATE, bench, data, instr)] = vector
                    rows.append({"condition": session.condition, "seed": session.seed, "template": TEMPLATE,
                                 "benchmark": bench, "data_lang": data, "instr_lang": instr, "n": int(vector.size),
                                 "acc_strict": acc, "pf_strict": pf})
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS + VALUE_COLUMNS)
    frame["n"] = frame["n"].astype("Int64")
    for column in VALUE_COLUMNS[1:]:
        frame[column] = frame[column].astype(float)
    return sort_runs(frame, [s.condition for s in sessions], design), correct, missing, notes


def sort_runs(frame: pd.DataFrame, conditions: list[str], design: Design) -> pd.DataFrame:
    """Params' session order, then the files' order: prompt (native, English), benchmark, data language."""
    langs = list(dict.fromkeys([*design.data_langs, design.anchor_lang]))

    def key(i: int) -> tuple:
        r = frame.iloc[i]
        prompt = 1 if r["instr_lang"] == design.anchor_lang and r["data_lang"] != design.anchor_lang else 0
        return (conditions.index(r["condition"]), prompt, design.benchmarks.index(r["benchmark"]),
                langs.index(r["data_lang"]))

    return frame.iloc[sorted(range(len(frame)), key=key)].reset_index(drop=True)


def prompt_of(row: pd.Series, design: Design) -> str:
    return "english" if row["instr_lang"] == design.anchor_lang and row["data_lang"] != design.anchor_lang else "native"


def summary_table(runs: pd.DataFrame, conditions: list[str], design: Design) -> pd.DataFrame:
    """The headline table: per prompt (native, then English), each condition's accuracy (%) per benchmark × data
    language, then each condition's difference from the baseline (pp). Numbers unrounded here."""
    cells = [f"{b}_{d}" for b in design.benchmarks for d in design.data_langs]
    frame = runs.assign(prompt=[prompt_of(r, design) for _, r in runs.iterrows()],
                        cell=runs["benchmark"] + "_" + runs["data_lang"])
    wide = frame.pivot(index=["condition", "prompt"], columns="cell", values="acc_strict") * 100
    rows = []
    for prompt in PROMPTS:
        base = wide.loc[(BASELINE, prompt)] if (BASELINE, prompt) in wide.index else None
        for measure in ("acc_pct", "delta_pp"):
            for condition in conditions:
                if (condition, prompt) not in wide.index or (measure == "delta_pp" and (condition == BASELINE or base is None)):
                    continue
                values = wide.loc[(condition, prompt)]
                if measure == "delta_pp":
                    values = values - base
                rows.append({"condition": condition, "label": display_name(condition), "prompt": prompt,
                             "measure": measure, **{c: values.get(c, math.nan) for c in cells}})
    return pd.DataFrame(rows, columns=["condition", "label", "prompt", "measure", *cells])
