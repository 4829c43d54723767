"""Profiles: params.yaml is what configure renders, and scales switch both ways."""

import pytest

from tools.configure import main, render, to_yaml
from stages.lib.params import parse_params


def test_committed_params_yaml_is_in_sync(repo_root):
    assert main(["--check", "--out", str(repo_root / "params.yaml")]) == 0


@pytest.mark.parametrize("phase", ["phase3", "phase2"])
@pytest.mark.parametrize("scale", ["smoke", "paper"])
def test_every_profile_validates(scale, phase):
    params = parse_params(render(scale, phase))
    assert (params.scale, params.phase) == (scale, phase)


def test_paper_uses_the_hub_and_the_original_sizes():
    params = parse_params(render("paper", "phase3"))
    code = params.fetch.sources["code"]
    assert code.kind == "hub" and code.dataset == "bigcode/the-stack-v2-dedup" and code.content == "s3"
    assert params.subset.tiers == {"5k": 5000, "20k": 20000}
    assert params.fetch.filters.min_stars == 21


def test_phase2_preset():
    smoke = parse_params(render("smoke", "phase2"))
    assert set(smoke.subset.tiers) == {"5k", "32k"} and smoke.transpile.packs == "phase2"
    assert all(run.seed == 42 for run in smoke.runs.values())
    paper = parse_params(render("paper", "phase2"))
    assert paper.fetch.sources["code"].dataset == "bigcode/the-stack"
    assert paper.subset.tiers == {"5k": 5000, "32k": 31818}


def test_switching_scales_round_trips(tmp_path):
    out = tmp_path / "params.yaml"
    assert main(["--out", str(out)]) == 0
    smoke = out.read_text()
    assert main(["--scale", "paper", "--out", str(out)]) == 0
    assert out.read_text() != smoke
    assert main(["--scale", "smoke", "--out", str(out)]) == 0
    assert out.read_text() == smoke


def test_check_detects_drift(tmp_path):
    out = tmp_path / "params.yaml"
    out.write_text(to_yaml(render(), "smoke", "phase3").replace("seed: 42", "seed: 7", 1))
    assert main(["--check", "--out", str(out)]) == 1
