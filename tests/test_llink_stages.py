"""The LLINK stages end to end at a tiny seeded size, in process: the issue's gates (Stage A
R@1 >= 20x chance; ablated and shuffled NLL gaps) and a deterministic Stage A."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from stages import llink_data, llink_direct, llink_eval, llink_features, llink_stage_a, llink_stage_b
from stages.lib.llink import inputs
from stages.lib.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def tiny_params(root, source, **stage_b) -> None:
    """The smoke params with smaller sizes (the shape of the run is the smoke one)."""
    data = yaml.safe_load((root / "params.yaml").read_text())
    llink = data["llink"]
    llink["data"].update(n_train=2000, n_dev=256)
    llink["stage_a"].update(steps=600, eval_every=200, eval_pairs=256, warmup_steps=60)
    llink["stage_b"].update(steps=150, **stage_b)
    llink["eval"].update(n_gen=8, max_new_tokens=8, n_probe=2)
    (source / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every llink stage once, in a scratch folder; returns it."""
    root = tmp_path_factory.mktemp("llink")
    tiny_params(ROOT, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        llink = load_params("params.yaml").llink
        for stage in (llink_data, llink_features, llink_stage_a, llink_stage_b):
            stage.run(llink)
        # the direct baseline is compared, not gated: a short run keeps this test quick
        llink_direct.run(llink.model_copy(update={"stage_b": llink.stage_b.model_copy(update={"steps": 20})}))
        llink_eval.run(llink)
    return root


def metrics(root, name: str) -> dict:
    return json.loads((root / "metrics" / "llink" / name).read_text())


def test_stage_a_retrieves_far_above_chance_and_the_native_baseline(pipeline):
    a = metrics(pipeline, "stage_a.json")
    assert a["chance_r_at_1"] == pytest.approx(1 / 256, abs=1e-6)
    assert a["r_at_1"] >= 20 * a["chance_r_at_1"]
    assert a["r_at_1"] > 5 * max(a["native_baseline"]["r_at_1"], a["untrained"]["r_at_1"])
    assert 0 < a["mrr"] <= 1


def test_stage_b_uses_the_slots(pipeline):
    e = metrics(pipeline, "eval.json")
    assert e["nll_ablated"] - e["nll_injected"] > 0.5
    assert e["nll_shuffled"] - e["nll_injected"] > 0.3
    assert e["token_budget"]["foreign_tokens"] > 3 * e["token_budget"]["k_slots"]
    assert set(e["generation"]) == {"llink", "llink_ablated", "direct"}
    assert set(e["gate_boost_nll"]) == {"0.5", "1.0", "2.0"}
    report = (pipeline / "reports" / "llink.md").read_text()
    assert report.startswith("# LLINK")
    signature = e["generation"]["llink"]["chrf_signature"]
    assert signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")
    assert f"sacrebleu's corpus chrF over the 8 rows, signature `{signature}`" in report


def test_outputs_carry_provenance_but_no_commit_in_hashed_files(pipeline):
    for folder in ("data/llink/pairs", "data/llink/features", "models/llink/stage_a", "models/llink/stage_b",
                   "models/llink/direct", "data/llink/eval"):
        record = json.loads((pipeline / folder / "provenance.json").read_text())
        assert {"git_sha", "dirty", "params", "packages"} <= set(record)
    assert "git_sha" not in json.dumps(metrics(pipeline, "eval.json"))


def test_stage_a_is_deterministic(pipeline):
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pipeline)
        llink = load_params("params.yaml").llink
        feats = inputs.features(inputs.Paths())
        first, history, _ = llink_stage_a.train(llink.stage_a.model_copy(update={"steps": 100}), feats, llink.threads)
        second, again, _ = llink_stage_a.train(llink.stage_a.model_copy(update={"steps": 100}), feats, llink.threads)
    assert history == again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_the_repo_usage_sign_weakens_the_usage_gap(pipeline):
    """The original's inverted hinge trains the LoRA to do without the slots (spec 4.5, 9.7): at a high
    weight, so that a short run shows it, its ablated gap is smaller than the paper sign's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pipeline)
        llink = load_params("params.yaml").llink
        gaps = {}
        for sign in ("paper", "repo"):
            usage = llink.stage_b.usage.model_copy(update={"sign": sign, "weight": 1.0, "every": 1, "margin": 0.5})
            cfg = llink.stage_b.model_copy(update={"usage": usage, "steps": 40})
            variant = llink.model_copy(update={"stage_b": cfg})
            paths = inputs.Paths(stage_b=pipeline / f"b-{sign}", metrics=pipeline / f"m-{sign}", eval=pipeline / f"e-{sign}",
                                 report=pipeline / f"r-{sign}.md")
            llink_stage_b.run(variant, paths)
            (paths.metrics / "stage_a.json").write_text((pipeline / "metrics/llink/stage_a.json").read_text())
            (paths.metrics / "features.json").write_text((pipeline / "metrics/llink/features.json").read_text())
            llink_eval.run(variant, paths)
            e = json.loads((paths.metrics / "eval.json").read_text())
            gaps[sign] = e["nll_ablated"] - e["nll_injected"]
    assert gaps["repo"] < gaps["paper"]
