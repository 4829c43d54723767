"""The smoke pipeline with real `dvc repro`, twice, in two clean clones.

Both clones rebuild everything up to the training datasets (package); the first also
trains one adapter, since twenty CPU trainings would double CI's time for little more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stages.lib.tables import read_rows, split_path

from .conftest import dvc, git

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

    # a params edit makes exactly its dependent stages stale
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("scope: aware", "scope: unaware"))
    stale = json.loads(dvc("status", "--with-deps", "--json", "package", TRAINED, cwd=project).stdout)
    expected = stages_with_param(project, "transpile.scope")
    assert any(s.startswith("transpile@") for s in expected)
    assert sorted(stale) == expected


def stages_with_param(repo: Path, key: str) -> list[str]:
    """The stages whose recorded params include ``key``: exactly those an edit of it must re-run."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return sorted(name for name, stage in stages.items() if key in stage.get("params", {}).get("params.yaml", {}))
