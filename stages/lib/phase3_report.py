"""The Phase 3 report: every table, analysis and figure of ``reports/`` from an index of results files.

``stages.report`` builds the index from params.yaml's runs (or a published snapshot, as ``report_published``
does) and :func:`write_report` reads the sessions, builds the tidy tables (stages/lib/report_frames.py,
stages/lib/report_significance.py), the paper's 22 tables (stages/lib/paper_tables.py), the four analyses
(stages/lib/analyses.py) and the figures (stages/lib/figures.py), and writes them into one folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from stages.lib import analyses, figures, paper_tables
from stages.lib import report_frames as frames
from stages.lib.provenance import write_json
from stages.lib.report_outputs import MAX_LISTED, Options, provenance, relative, write_comparisons, write_table
from stages.lib.report_significance import significance
from stages.lib.results_index import (BASELINE, PUBLISHED, ROW_COLUMNS, RUN_COLUMNS, Grid, Index, ReportError, load_rows,
                                      load_sessions)


def write_analyses(folder: Path, sessions, runs: pd.DataFrame, *, jobs: int, with_rows: bool, grid: Grid = PUBLISHED) -> None:
    """The original's four published analyses (stages/lib/analyses.py); without rows, their headers only.
    They are the published study's: of XNLI and SIB-200 only, any language of ``grid``."""
    rows = load_rows(sessions, ("xnli", "sib200"), jobs=jobs, grid=grid) if with_rows else pd.DataFrame(columns=ROW_COLUMNS)
    for name, frame in analyses.all_analyses(rows, runs).items():
        write_table(folder / name, frame, {c: 4 for c in analyses.FOUR_DP[analyses.OUTPUTS[name]]})


def in_paper_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the published study's benchmarks and languages: the paper's tables average over their cells
    only, so a benchmark or language params add is in every other table and figure, never inside a paper mean."""
    keep = (frame["benchmark"].isin(PUBLISHED.benchmarks) & frame["data_lang"].isin(PUBLISHED.langs)
            & frame["instr_lang"].isin(PUBLISHED.langs))
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def write_paper_tables(out: Path, complete: pd.DataFrame, vs: pd.DataFrame) -> int:
    """``tables.tex`` and ``tables/<label>.csv`` of the published study's grid (:func:`in_paper_grid`);
    returns how many tables."""
    complete, vs = in_paper_grid(complete), in_paper_grid(vs)
    is_base = complete["condition"] == BASELINE
    base = complete[is_base][frames.PAIR].copy()
    base["orig"] = complete.loc[is_base, "acc_strict"].round(4).to_numpy()
    base["rep"] = complete.loc[is_base, "acc_refined"].round(4).to_numpy()
    tables = paper_tables.build_tables(vs, base)
    (out / "tables.tex").write_text(paper_tables.render_tex(tables), encoding="utf-8")
    for table in tables:
        (out / "tables").mkdir(exist_ok=True)
        (out / "tables" / f"{table.name}.csv").write_text(paper_tables.render_csv(table), encoding="utf-8")
    return len(tables)


def write_report(out: Path, index: Index, source: dict, options: Options, err=None, grid: Grid = PUBLISHED) -> int:
    """The report of ``index``'s sessions into ``out``; ``source`` says where the index came from (provenance),
    ``grid`` which benchmarks and languages its cells may name (params' grid, or the published study's)."""
    err = err or sys.stderr
    for notice in index.notices:
        print(f"report: {notice}", file=err)
    runs, correct, notes = load_sessions(index.sessions, jobs=options.jobs, with_rows=not options.no_rows, grid=grid)
    for note in notes:
        print(f"report: note: {note}", file=err)
    if runs.empty:
        raise ReportError(f"{index.root}: no results found")

    missing = list(index.missing) + frames.missing_cells(runs, index, correct, grid)
    complete, dropped = frames.complete_groups(runs)
    vs_all, no_base = frames.vs_baseline(runs)
    missing += dropped + no_base
    keys = complete[["condition", *frames.CELL]].drop_duplicates()
    vs = vs_all.merge(keys, on=["condition", *frames.CELL])
    vs = vs.dropna(subset=["delta_rep", "delta_orig"])

    out.mkdir(parents=True, exist_ok=True)
    sig = significance(complete, correct, original=options.original_statistics, boot_seed=options.bootstrap_seed,
                       boot_resamples=options.bootstrap_resamples, err=err, templates=grid.templates)
    write_comparisons(out, runs, vs_all, vs, sig, correct)
    write_table(out / "scoring_comparison.tsv", frames.scoring_comparison(vs_all, keys, grid.benchmarks),
                {"delta_strict": 4, "delta_refined": 4, "delta_loglik": 4})
    run_cols = RUN_COLUMNS + ["n", "acc_strict", "acc_refined", "pf_strict", "pf_refined"]
    if runs["acc_loglik"].notna().any():
        run_cols += ["acc_loglik"]
    write_table(out / "runs.csv", runs[run_cols], sep=",")
    write_json(out / "metrics.json", frames.metrics(complete, vs, grid.benchmarks))
    n_tables = write_paper_tables(out, complete, vs)
    write_analyses(out / "analyses", index.sessions, runs, jobs=options.jobs, with_rows=not options.no_rows,
                   grid=grid)

    plots = None if options.no_plots else figures.write_figures(out / "plots", vs, runs, sig, frames.conclusion_flips(vs_all),
                                                           grid)
    if plots:
        print(f"report: {plots}", file=err)

    write_table(out / "missing.tsv", pd.DataFrame(missing, columns=frames.MISSING_COLUMNS))
    lines = frames.missing_lines(missing, grid)
    for line in lines[:MAX_LISTED]:
        print(f"report: missing {line}", file=err)
    if len(lines) > MAX_LISTED:
        print(f"report: ... and more missing (all in {Path(options.out) / 'missing.tsv'})", file=err)

    inputs = sorted(relative(p, index.root) for s in index.sessions for p in s.files.values())
    write_json(out / "provenance.json", provenance({
        "source": source, "statistics": options.statistics_mode, "bootstrap_seed": options.bootstrap_seed,
        "bootstrap_resamples": options.bootstrap_resamples, "per_example_rows": not options.no_rows,
    }, {"inputs": inputs, "notices": index.notices, "notes": [n.replace(str(index.root), "<input>") for n in notes],
        "n_missing": len(missing), "plots": plots or options.plots_note}))
    print(f"report: {len(runs)} run cells, {len(vs_all)} vs baseline, {len(sig)} significance rows, "
          f"{n_tables} tables, {len(missing)} missing -> {options.out}", file=err)
    return 0
