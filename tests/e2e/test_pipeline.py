"""The smoke pipeline with real `dvc repro`, twice, in two clean clones.

Both clones rebuild everything up to the training datasets (package); the first also
trains one adapter, since twenty CPU trainings would double CI's time for little more,
evaluates it and the baseline, reparses both and writes the report from those two sessions.
A third clone pulls that adapter from the remote instead of training it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stages.lib.tables import read_rows, split_path

from .conftest import FAKE_SECRETS, dvc, files_holding, git

pytestmark = pytest.mark.e2e



def lock_outputs(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


TRAINED = "train@condition-1-en-5k-seed42"


def test_repro_rebuilds_identically_and_then_does_nothing(tmp_path, project):
    dvc("repro", "package", cwd=project)
    dvc("repro", "--single-item", TRAINED, cwd=project)
    adapter = project / "models/tiny-aya-base/condition-1-en-5k-seed42"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0

    # every condition-2 row is a condition-1 row of the same split, idx and file
    en = read_rows(split_path(project / "data/condition-1-en-5k", "train"))
    zh = read_rows(split_path(project / "data/condition-2-zh-5k", "train"))
    by_idx = {row["idx"]: row for row in en}
    assert zh and all(by_idx[r["idx"]]["file_path"] == r["file_path"] for r in zh)
    assert all(by_idx[r["idx"]]["code"] == r["code_en"] != r["code"] for r in zh)
    stats = json.loads((project / "metrics/data/fetch-code.json").read_text())["fetch"]["code"]
    assert stats["accepted"] > 0 and stats["failed_license"] > 0  # tqdm's MPL licence is refused

    # the adapter and the baseline through evaluate, reparse and report
    sessions = ("baseline", "condition-1-en-5k-seed42")
    dvc("repro", "--single-item", *(f"evaluate@{s}" for s in sessions), "reparse", cwd=project)
    dvc("repro", "--single-item", "report", cwd=project)
    run_dir = project / "metrics/eval/phase3/conditions/condition-1-en-5k/seed42"
    results = json.loads((run_dir / "condition-1-en-5k_seed42_results_template1.json").read_text())
    assert len(results["summary"]) == 64  # 4 benchmarks x 4 data x 4 instruction languages
    pf = [value for value in results["parse_failure_rates"].values()]
    assert min(pf) < 1.0, "the pre-trained smoke base answers in the benchmarks' format somewhere"
    reparsed = project / "metrics/reparsed/phase3/conditions/baseline/seednone/baseline_seednone_summary_reparsed_template2.json"
    assert json.loads(reparsed.read_text())["reparse_metadata"]["extractors_applied"] == ["belebele", "csqa", "sib200", "xnli"]
    vs = (project / "reports/vs_baseline_cells.tsv").read_text().splitlines()
    assert len(vs) == 1 + 128  # header + every cell of the one adapter against the baseline
    assert (project / "reports/tables/t1-xnli.csv").read_text().startswith("Condition")
    report_metrics = json.loads((project / "reports/metrics.json").read_text())
    assert "condition-1-en-5k" in report_metrics["xnli"]
    assert (project / "reports/missing.tsv").read_text().count("condition-2-zh-5k") > 0

    again = dvc("repro", "package", TRAINED, cwd=project)
    assert "Running stage" not in again.stdout
    status = dvc("status", "--with-deps", "--json", "package", TRAINED, cwd=project)
    assert json.loads(status.stdout) == {}

    # a second clean clone rebuilds every output with the same hash
    clone = tmp_path / "clone"
    git("clone", "-q", str(project), str(clone), cwd=tmp_path)
    dvc("repro", "package", cwd=clone)
    first, second = lock_outputs(project), lock_outputs(clone)
    assert second and {path: first[path] for path in second} == second
    for metric in sorted((project / "metrics/data").glob("*.json")):
        assert metric.read_bytes() == (clone / "metrics/data" / metric.name).read_bytes()

    # a fresh clone pulls the trained adapter from the remote instead of retraining it
    dvc("push", "--run-cache", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "trained", cwd=project)
    puller = tmp_path / "puller"
    git("clone", "-q", str(project), str(puller), cwd=tmp_path)
    dvc("pull", "--with-deps", TRAINED, cwd=puller)
    pulled = puller / "models/tiny-aya-base/condition-1-en-5k-seed42/adapter_model.safetensors"
    assert pulled.read_bytes() == (adapter / "adapter_model.safetensors").read_bytes()
    assert "Running stage" not in dvc("repro", TRAINED, cwd=puller).stdout
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(puller / "models/base")
    loaded = PeftModel.from_pretrained(base, str(puller / "models"), subfolder="tiny-aya-base/condition-1-en-5k-seed42")
    assert "default" in loaded.peft_config

    # the run grid over two queue workers: each experiment trains one run in its own temporary
    # workspace; the run-cache they fill lets the workspace's `dvc repro` restore, not retrain
    queued = ("train@condition-1-en-5k-seed123", "train@condition-1-en-5k-seed456")
    for target in queued:
        dvc("exp", "run", "--queue", target, cwd=project)
    dvc("queue", "start", "-j", "2", cwd=project)
    statuses = wait_for_queue(project)
    dvc("queue", "stop", cwd=project, check=False)
    assert sorted(statuses.values()) == ["Success", "Success"], statuses
    restored = dvc("repro", "--single-item", *queued, cwd=project)
    assert "Running stage" not in restored.stdout and restored.stdout.count("skipping run") == 2, restored.stdout
    for target in queued:
        run_id = target.split("@")[1]
        assert (project / f"models/tiny-aya-base/{run_id}/adapter_model.safetensors").is_file()
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "queued runs", cwd=project)

    # no credential from the environment reached any output, log, cache or lock file
    for name, secret in FAKE_SECRETS.items():
        assert files_holding(project, secret) == [], name

    # a params edit makes exactly its dependent stages stale, and the params gate that checks every edit
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("scope: aware", "scope: unaware"))
    stale = json.loads(dvc("status", "--with-deps", "--json", "package", TRAINED, cwd=project).stdout)
    expected = stages_with_param(project, "transpile.scope")
    assert any(s.startswith("transpile@") for s in expected)
    assert sorted(stale) == sorted([*expected, "validate_params"])


def wait_for_queue(repo: Path, timeout_s: float = 900.0) -> dict[str, str]:
    """Poll `dvc queue status` until no experiment is queued or running; {task: status}."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        lines = dvc("queue", "status", cwd=repo).stdout.splitlines()
        rows = [line.split() for line in lines[1:] if line.strip() and not line.startswith("Worker status")]
        statuses = {row[0]: row[-1] for row in rows}
        if statuses and not {"Queued", "Running"} & set(statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not finish in {timeout_s} s:\n" + "\n".join(lines))
        time.sleep(5)


def stages_with_param(repo: Path, key: str) -> list[str]:
    """The stages whose recorded params include ``key``: exactly those an edit of it must re-run."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return sorted(name for name, stage in stages.items() if key in stage.get("params", {}).get("params.yaml", {}))
