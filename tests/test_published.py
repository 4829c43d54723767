"""The published study as stages (issue 19 §1), offline: huggingface_hub's own snapshot_download reads a
local cache in the Hub's layout holding a synthetic published tree (stages/lib/synthetic_published.py);
the paper-table check against the original's tables.tex (skipped without ../shared)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import import_published, report_published
from stages import reparse as reparse_stage
from stages.lib import paper_facts, published, synthetic_published
from tools import check_paper_tables
from tools.configure import render

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "legesher/language-decoded-experiments"
KEPT = ("baseline", "condition-1-en-5k", "condition-2-zh-5k")  # a few sessions: the report runs in seconds
TABLES_TEX = ROOT.parent / "shared" / "reference" / "original-analysis" / "published" / "tables.tex"
needs_shared = pytest.mark.skipif(not TABLES_TEX.is_file(), reason=f"{TABLES_TEX} is absent (no ../shared checkout)")
LINE = re.compile(r"^(\d+)/(\d+) cells agree within ±0\.1 pp$")


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory) -> dict[str, bytes]:
    """The Hub repo's files: the synthetic tree's kept sessions, plus what the import must leave alone."""
    raw = synthetic_published.write_tree(tmp_path_factory.mktemp("synthetic") / "raw", 0)
    files = {p.relative_to(raw).as_posix(): p.read_bytes() for p in sorted(raw.rglob("*.json"))
             if p.parts[-3] in KEPT}
    some = next(name for name in files if name.endswith("_results_template1.json"))
    files[some.replace("_results_", "_summary_reparsed_")] = b"{}"  # the original's: reparse_published writes its own
    files["phase3/analysis/refined-tables/vs_baseline_cells.tsv"] = b"x\n"
    files["README.md"] = b"# the card\n"
    files["conditions/condition-2-zh-5k/results/english_prompt_results.json"] = b'{"summary": {}}'
    return files


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, hub_files) -> Path:
    cache = tmp_path_factory.mktemp("hf-cache")
    published.write_cache(cache, REPO, "dataset", COMMIT, hub_files)
    return cache


def params_file(path: Path, *, enabled: bool, revision: str = COMMIT) -> Path:
    data = render()
    data["published"]["enabled"] = enabled
    data["published"]["experiments"]["revision"] = revision
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_disabled_stages_only_say_why(tmp_path, capsys):
    params = params_file(tmp_path / "params.yaml", enabled=False)
    experiments, reparsed, out = tmp_path / "exp", tmp_path / "rep", tmp_path / "reports" / "published"
    (experiments / "stale").mkdir(parents=True)
    assert import_published.main(["--params", str(params), "--out", str(experiments)]) == 0
    assert sorted(p.name for p in experiments.iterdir()) == ["status.json"]  # nothing stale survives
    status = json.loads((experiments / "status.json").read_text())
    assert status["status"] == "skipped" and "published.enabled is false" in status["reason"]
    assert "dvc repro" in status["to_run"]
    assert reparse_stage.main(["--published", str(experiments), "--out-dir", str(reparsed)]) == 0
    assert report_published.main(["--experiments", str(experiments), "--reparsed", str(reparsed), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "status.json"]
    assert json.loads((out / "metrics.json").read_text()) == {}
    assert "published.enabled is false" in json.loads((out / "status.json").read_text())["reason"]
    assert "skipped" in capsys.readouterr().out


@pytest.mark.parametrize("revision", ["PIN-ME", "main"])
def test_an_unpinned_revision_is_refused(tmp_path, capsys, revision):
    params = params_file(tmp_path / "params.yaml", enabled=True, revision=revision)
    assert import_published.main(["--params", str(params), "--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert "published.experiments.revision" in err and "not pinned" in err
    assert not (tmp_path / "exp").exists()


def test_a_revision_missing_from_the_cache_names_repo_and_commit(tmp_path, hub_cache, capsys):
    params = params_file(tmp_path / "params.yaml", enabled=True, revision="f" * 40)
    assert import_published.main(["--params", str(params), "--out", str(tmp_path / "exp"),
                                  "--cache-dir", str(hub_cache)]) == 2
    assert f"cannot download {REPO}@{'f' * 40}" in capsys.readouterr().err


def test_import_reparse_report_and_check(tmp_path, hub_cache, hub_files, capsys):
    params = params_file(tmp_path / "params.yaml", enabled=True)
    experiments, reparsed, out = tmp_path / "exp", tmp_path / "rep", tmp_path / "reports" / "published"
    argv = ["--params", str(params), "--out", str(experiments), "--cache-dir", str(hub_cache)]
    assert import_published.main(argv) == 0
    imported = sorted(p.relative_to(experiments).as_posix() for p in experiments.rglob("*") if p.is_file())
    wanted = sorted(n for n in hub_files if "_summary_reparsed_" not in n and n.endswith(".json"))
    assert imported == sorted([*wanted, "manifest.json", "status.json"])
    manifest = json.loads((experiments / "manifest.json").read_text())
    assert (manifest["repo"], manifest["revision"]) == (REPO, COMMIT)
    assert all(hub_files[name] == (experiments / name).read_bytes() for name in manifest["files_sha256"])
    first = (experiments / "manifest.json").read_bytes()
    assert import_published.main(argv) == 0 and (experiments / "manifest.json").read_bytes() == first  # no time in it

    assert reparse_stage.main(["--no-repo-head", "--jobs", "1", "--published", str(experiments),
                               "--out-dir", str(reparsed)]) == 0
    results = sorted(experiments.glob("phase3/conditions/*/*/*_results_*.json"))
    flat = tmp_path / "flat"
    assert reparse_stage.main(["--no-repo-head", "--jobs", "1", "--out-dir", str(flat), *map(str, results)]) == 0
    for path in results:  # the layout kept, the bytes those of the plain reparse
        name = path.name.replace("_results_", "_summary_reparsed_")
        assert (reparsed / path.parent.relative_to(experiments) / name).read_bytes() == (flat / name).read_bytes()
    assert json.loads((reparsed / "provenance.json").read_text())["params"]["snapshot"]["revision"] == COMMIT

    assert report_published.main(["--experiments", str(experiments), "--reparsed", str(reparsed), "--out", str(out),
                                  "--jobs", "1"]) == 0
    for name in ("tables.tex", "significance.tsv", "cross_seed_variance.tsv", "metrics.json", "paper_tables_check.tsv",
                 "analyses/xnli-label-distributions.tsv", "analyses/sib200-category-accuracy.tsv"):
        assert (out / name).is_file(), name
    labels = set(paper_facts.tex_tables((out / "tables.tex").read_text()))
    assert {fact.table for fact in paper_facts.read_facts()} <= labels  # every table of the paper is regenerated
    status = json.loads((out / "status.json").read_text())
    agree, total = map(int, LINE.match(status["paper_tables"]).groups())
    assert total == len(paper_facts.read_facts()) and agree < total  # synthetic numbers are not the paper's
    checked = (out / "paper_tables_check.tsv").read_text().splitlines()
    assert len(checked) == 1 + total - agree
    assert status["snapshot"]["revision"] == COMMIT
    assert status["paper_tables"] in capsys.readouterr().out

    # the published report's metrics carry the keys of the project's own, for `dvc metrics show` side by side
    ours = json.loads((ROOT / "reports" / "metrics.json").read_text())
    theirs = json.loads((out / "metrics.json").read_text())
    assert set(theirs) == set(ours)
    shared = [(b, c) for b in theirs for c in theirs[b] if c in ours[b]]
    assert shared and all(set(theirs[b][c]) <= set(ours[b][c]) | {"delta_refined", "delta_strict"} for b, c in shared)


def test_check_reads_a_report_of_its_own_facts(tmp_path, capsys):
    """The shipped facts rendered back into tables agree with themselves; one cell moved by 0.2 pp does not."""
    facts = paper_facts.read_facts()
    tex = tables_tex_from(facts)
    (tmp_path / "tables.tex").write_text(tex, encoding="utf-8")
    assert check_paper_tables.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{len(facts)}/{len(facts)} cells agree within ±0.1 pp"
    moved = [f if i != 7 else paper_facts.Fact(f.table, f.row, f.col, (f.values[0] + 0.2,)) for i, f in enumerate(facts)]
    (tmp_path / "tables.tex").write_text(tables_tex_from(moved), encoding="utf-8")
    assert check_paper_tables.main([str(tmp_path), "--out", str(tmp_path / "check.tsv")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{len(facts) - 1}/{len(facts)} cells agree within ±0.1 pp"
    assert f"{facts[7].table} / {facts[7].row} / column {facts[7].col}" in out
    assert len((tmp_path / "check.tsv").read_text().splitlines()) == 2
    assert check_paper_tables.main([str(tmp_path / "nowhere")]) == 2


def tables_tex_from(facts) -> str:
    """A tables.tex holding exactly the facts' cells ("--" where a row has no fact)."""
    tables: dict[str, dict[str, dict[int, tuple]]] = {}
    for fact in facts:
        tables.setdefault(fact.table, {}).setdefault(fact.row, {})[fact.col] = fact.values
    blocks = []
    for label, rows in tables.items():
        lines = [r"\begin{table}[t]", r"  \begin{tabular}{lr}", r"    Condition & x \\", r"    \midrule"]
        for row, cells in rows.items():
            values = [" / ".join(f"{v:.1f}" for v in cells[c]) if c in cells else "--" for c in range(1, max(cells) + 1)]
            lines.append("    " + " & ".join([*row.split(paper_facts.ROW_JOIN), *values]) + r" \\")
        lines += [r"    \bottomrule", r"  \end{tabular}", rf"  \label{{{label}}}", r"\end{table}", ""]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


@needs_shared
def test_the_facts_are_the_papers_tables_tex(tmp_path):
    """The shipped facts are what the generator reads from the original's tables.tex, and that file checks N/N."""
    out = tmp_path / "facts.tsv"
    assert paper_facts.main([str(TABLES_TEX), "--out", str(out)]) == 0
    assert out.read_bytes() == paper_facts.FACTS.read_bytes()
    comparison = paper_facts.compare(paper_facts.read_facts(), TABLES_TEX.read_text(encoding="utf-8"))
    assert comparison.line() == "1256/1256 cells agree within ±0.1 pp"
    assert {fact.table for fact in paper_facts.read_facts()}.__len__() == 22


def dvc(*args: str, cwd: Path, env: dict) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.e2e
def test_dvc_repro_of_the_published_report(tmp_path, hub_cache):
    """Smoke params: `dvc repro report_published` skips offline in seconds; pinned and enabled, the same target
    imports from the (local) Hub cache through snapshot_download, reparses and reports; metrics show both."""
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = True\n    analytics = false\n")
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    names = ("validate_params", "import_published", "import_adapters", "reparse_published", "report_published")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {n: pipeline["stages"][n] for n in names},
                                                   "metrics": pipeline["metrics"]}, sort_keys=False))
    params_file(repo / "params.yaml", enabled=False)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache),
           "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    out = dvc("repro", "report_published", "import_adapters", cwd=repo, env=env)
    assert "skipped" in out
    assert json.loads((repo / "reports/published/status.json").read_text())["status"] == "skipped"
    assert json.loads((repo / "data/published/adapters/status.json").read_text())["status"] == "skipped"

    params_file(repo / "params.yaml", enabled=True)
    out = dvc("repro", "report_published", cwd=repo, env=env)
    assert LINE.search(out.split("report_published: ")[-1].split(" (")[0])
    assert (repo / "reports/published/tables.tex").is_file()
    shown = dvc("metrics", "show", "--json", cwd=repo, env=env)
    assert "reports/published/metrics.json" in shown and "acc_refined" in shown
