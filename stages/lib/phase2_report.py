"""The Phase 2 report: one seed, one wording per language, strict extractors only.

Writes every file the report stage declares (stages/lib/report_outputs.py), in Phase 3's schemas where they
apply (strict columns filled, refined and log-likelihood ones empty; ``metrics.json`` keys line up with
Phase 3's for ``dvc metrics diff phase2 phase3``), McNemar per cell against the baseline, the Phase 2
summary's headline table as ``tables/phase2_summary.tsv`` (accuracy % and Δ pp, 1 dp) and no paper tables
(``tables.tex`` says so). The sessions are exactly params' ``evaluate.sessions``, each read under the
evaluation folder (stages/lib/phase2_results.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stages.lib import figures, phase2_results
from stages.lib import report_frames as frames
from stages.lib.params import Params
from stages.lib.phase3_report import write_analyses
from stages.lib.provenance import write_json
from stages.lib.report_outputs import MAX_LISTED, Options, provenance, relative, write_comparisons, write_table
from stages.lib.report_significance import significance
from stages.lib.results_index import RUN_COLUMNS, ReportError

PHASE2_RUN_COLUMNS = RUN_COLUMNS + ["n", "acc_strict", "pf_strict"]
PHASE2_TABLES_TEX = (
    "% Phase 2 (params.yaml phase: phase2) has no paper tables: the paper's 22 tables are Phase 3's.\n"
    "% Its headline table (the published Phase 2 summary's accuracy table) is tables/phase2_summary.tsv.\n"
)


def write_report(out: Path, params: Params, params_path: Path, eval_dir: Path, options: Options, err) -> int:
    """The report of a Phase 2 params.yaml (read from ``params_path``) over the sessions under ``eval_dir``."""
    design = phase2_results.Design.of(params)
    conditions = list(params.evaluate.sessions)
    sessions, missing = phase2_results.expected_sessions(params, eval_dir)
    runs, correct, absent, notes = phase2_results.load_sessions(sessions, design)
    for note in notes:
        print(f"report: note: {note}", file=err)
    if runs.empty:
        raise ReportError(f"{eval_dir}: no Phase 2 results found for the sessions of {params_path}")
    vs_all, no_base = frames.vs_baseline(runs)
    missing += absent + no_base
    vs = vs_all.dropna(subset=["delta_orig"])
    keys = runs[["condition", *frames.CELL]].drop_duplicates()

    out.mkdir(parents=True, exist_ok=True)
    sig = significance(runs, correct, original=options.original_statistics, boot_seed=options.bootstrap_seed,
                       boot_resamples=options.bootstrap_resamples, err=err)  # refined accuracies only: header only
    write_comparisons(out, runs, vs_all, vs, sig, correct)
    scoring = frames.scoring_comparison(vs_all, keys, design.benchmarks)
    scoring["sign_refined"] = ""  # sign() of the absent refined Δ would read as "no change"
    write_table(out / "scoring_comparison.tsv", scoring, {"delta_strict": 4, "delta_refined": 4, "delta_loglik": 4})
    write_table(out / "runs.csv", runs[PHASE2_RUN_COLUMNS], sep=",")
    write_json(out / "metrics.json", frames.metrics(runs, vs, design.benchmarks))

    summary = phase2_results.summary_table(runs, conditions, design)
    write_table(out / "tables" / "phase2_summary.tsv", summary, {c: 1 for c in summary.columns[4:]})
    (out / "tables.tex").write_text(PHASE2_TABLES_TEX, encoding="utf-8")
    # the four analyses read Phase 3's refined rows: declared outputs, so written with their headers only
    write_analyses(out / "analyses", [], runs.iloc[0:0], jobs=1, with_rows=False)

    plots = None if options.no_plots else figures.write_phase2_figure(out / "plots", vs, conditions, design)
    if not options.no_plots:
        figures.write_plot_data(out / "plots", vs, runs, delta="delta_orig")  # the data dvc plots diff reads
    if plots:
        print(f"report: {plots}", file=err)

    write_table(out / "missing.tsv", pd.DataFrame(missing, columns=frames.MISSING_COLUMNS))
    for row in missing[:MAX_LISTED]:
        where = " ".join(f"{k}={row[k]}" for k in frames.MISSING_COLUMNS[1:7] if row.get(k) not in (None, ""))
        print(f"report: missing {row['what']}: {where}: {row['detail']}", file=err)

    root = Path(eval_dir)
    inputs = sorted(relative(p, root) for s in sessions for p in s.files.values())
    write_json(out / "provenance.json", provenance({
        "source": {"mode": "params", "phase": "phase2", "sessions": conditions,
                   "runs": {k: v.model_dump(mode="json") for k, v in params.runs.items()}},
        "benchmarks": list(design.benchmarks), "data_langs": list(design.data_langs), "anchor_lang": design.anchor_lang,
        "scoring": "strict (the files' own summary and correct fields; no reparse)", "statistics": options.statistics_mode,
    }, {"inputs": inputs, "notes": [n.replace(str(root), "<input>") for n in notes], "n_missing": len(missing),
        "plots": plots or options.plots_note}))
    print(f"report: phase2: {len(runs)} run cells, {len(vs_all)} vs baseline, {len(summary)} summary rows, "
          f"{len(missing)} missing -> {options.out}", file=err)
    return 0
