"""dvc.yaml stays the map of the code: its stages, modules, deps and params agree with the repo."""

from __future__ import annotations

import re

import pytest
import yaml

from stages.lib.params import load_params


def pipeline(repo_root) -> dict:
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


def test_every_stage_runs_one_existing_module(repo_root):
    for name, stage in pipeline(repo_root).items():
        body = stage.get("do", stage)
        module = re.match(r"python -m stages\.(\w+)\b", body["cmd"])
        assert module, f"{name}: cmd must be `python -m stages.<module>`"
        assert (repo_root / "stages" / f"{module.group(1)}.py").is_file(), name
        assert f"stages/{module.group(1)}.py" in body["deps"], f"{name} must depend on its own module"


def test_base_deps_are_the_tokenizer_datasets(repo_root):
    params = load_params(repo_root / "params.yaml")
    deps = [d for d in pipeline(repo_root)["base"]["deps"] if d.startswith("data/")]
    assert deps == [f"data/{name}/train-00000-of-00001.parquet" for name in params.base.tokenizer_datasets]


def test_lock_holds_no_stage_that_dvc_yaml_lost(repo_root):
    lock = repo_root / "dvc.lock"
    if not lock.exists():
        return
    names = set(yaml.safe_load(lock.read_text())["stages"])
    declared = set(pipeline(repo_root))
    assert {n.split("@")[0] for n in names} <= declared


@pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc")  # DVC's graph code: a pygtrie deprecation, not ours
def test_every_stage_runs_after_the_params_check(repo_root):
    """Issue 23 items 2 and 5: validate_params is upstream of every stage, and its own command interpolates no
    params, so `dvc repro` checks the whole params.yaml before any command with params in it reaches a shell."""
    import contextlib

    import networkx as nx
    from dvc.repo import Repo

    gate = pipeline(repo_root)["validate_params"]
    assert "$" not in gate["cmd"] and "params" not in gate and "params.yaml" in gate["deps"]
    with contextlib.chdir(repo_root), Repo(".") as repo:
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        check = next(stage for stage in graph if stage.addressing == "validate_params")
        after = {stage.addressing for stage in nx.ancestors(graph, check)}
        assert after == {stage.addressing for stage in graph} - {"validate_params"}


def top_level_plots(repo_root) -> dict:
    plots = yaml.safe_load((repo_root / "dvc.yaml").read_text())["plots"]
    return {next(iter(p)): next(iter(p.values())) for p in plots if isinstance(p, dict)}


def test_training_summaries_are_metrics_the_run_cache_keeps(repo_root):
    """Issue 22: `dvc metrics show` lists every run's summary.json. Cached (no `cache: false`), because
    `cache: false` turns the run-cache off for the stage and the queued train@<run> grid restores from it."""
    train = pipeline(repo_root)["train"]["do"]
    assert train["metrics"] == ["metrics/train/${key}/summary.json"]
    assert "metrics/train/${key}/loss.tsv" in train["outs"]  # drawn by the overlays below, not 20 plots
    assert "plots" not in train and all(isinstance(out, str) for out in train["outs"] + train["metrics"])


def test_loss_overlays_cover_the_phase3_grid(repo_root):
    """One plot of every Phase 3 run's loss curve and one of condition-2-zh-5k's seeds, for both scales."""
    from tools.configure import render
    from stages.lib.params import parse_params

    plots = top_level_plots(repo_root)
    for scale in ("smoke", "paper"):
        runs = list(parse_params(render(scale, "phase3")).runs)
        assert len(runs) == 20
        assert plots["train-loss"]["y"] == {f"metrics/train/{run}/loss.tsv": "loss" for run in runs}
        seeds = [run for run in runs if run.startswith("condition-2-zh-5k-seed")]
        assert len(seeds) == 3 and plots["train-loss-seeds"]["y"] == {f"metrics/train/{run}/loss.tsv": "loss" for run in seeds}
    for name in ("train-loss", "train-loss-seeds"):
        assert plots[name]["x"] == "step" and plots[name]["template"] == "linear"


def test_the_stages_folder_is_the_map_dvc_yaml_draws(repo_root):
    """Every module in stages/ is a stage's; tools live in tools/, shared code in stages/lib/."""
    modules = {path.stem for path in (repo_root / "stages").glob("*.py")} - {"__init__"}
    ran = {re.match(r"python -m stages\.(\w+)", stage.get("do", stage)["cmd"]).group(1)
           for stage in pipeline(repo_root).values()}
    # import_adapters copies the published adapters; it is becoming a stage on another branch
    assert modules - ran <= {"import_adapters"}


def test_the_report_outputs_are_declared_once(repo_root):
    """dvc.yaml's report outs and metrics are stages/lib/report_outputs.py's, which the stage checks it wrote."""
    from stages.lib import report_outputs

    report = pipeline(repo_root)["report"]
    names = lambda entries: [next(iter(e)) if isinstance(e, dict) else e for e in entries]  # noqa: E731
    assert names(report["outs"]) == [f"reports/{name}" for name in report_outputs.OUTS]
    assert names(report["metrics"]) == [f"reports/{name}" for name in report_outputs.METRICS]
    assert report_outputs.undeclared({*report_outputs.OUTS, *report_outputs.METRICS}) == ([], [])
    assert report_outputs.undeclared({*report_outputs.OUTS, *report_outputs.METRICS, "x.tsv"} - {"plots"}) == (
        ["x.tsv"], ["plots"])
    assert report_outputs.undeclared(set(report_outputs.OUTS + report_outputs.METRICS) - {"plots"}, no_plots=True) == (
        [], [])
