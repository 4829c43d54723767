"""The params schema: strict, named errors, the grid as data."""

import copy

import pytest
import yaml

from tools.configure import render
from stages.lib.params import ParamsError, expand_grid, load_params, parse_params
from tests.conftest import profile_values


@pytest.fixture
def data():
    return render("smoke", "phase3")


def error_of(data) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_params(data)
    return str(caught.value)


def test_committed_params_load(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert params.scale == "smoke" and params.phase == "phase3"
    assert params.subset.tiers["5k"] < params.subset.tiers["20k"]


def test_unknown_key_is_named(data):
    data["subset"]["sede"] = 42
    message = error_of(data)
    assert "params.yaml: subset.sede:" in message and "Extra inputs" in message


def test_wrong_type_is_named(data):
    data["subset"]["seed"] = "42"
    assert "subset.seed:" in error_of(data)


def test_nested_unknown_key_in_a_source_is_named(data):
    data["fetch"]["sources"]["code"]["distribution"] = {}
    assert "fetch.sources.code.installed.distribution" in error_of(data)


def test_empty_grid_rejected(data):
    data["grid"] = []
    assert "grid:" in error_of(data)


@pytest.mark.parametrize("bad_id", ["condition-1-en-5k.seed42", "condition-1@5k"])
def test_run_id_with_dot_or_at_rejected(data, bad_id):
    data["runs"][bad_id] = next(iter(data["runs"].values()))
    message = error_of(data)
    assert bad_id in message


def test_runs_must_match_grid(data):
    data["runs"].pop("condition-1-en-5k-seed42")
    message = error_of(data)
    assert "condition-1-en-5k-seed42" in message and "tools.configure" in message


def test_grid_expands_to_the_published_adapter_names(data):
    runs = parse_params(data).runs
    assert len(runs) == 20  # 3 + 1 + 9 + 3 + 1 + 3
    assert runs["condition-2-zh-5k-seed123"].seed == 123
    assert runs["condition-3-zh-5k-native-code-seed42"].dataset == "condition-3-zh-5k"
    assert "condition-5-ur-5k-c4ai-aya-expanse-32b-seed42" in runs
    assert not any(r.tier == "20k" and r.seed != 42 for r in runs.values())


def test_duplicate_run_in_grid_rejected(data):
    entry = copy.deepcopy(data["grid"][0])
    data["grid"].append(entry)
    assert "produced twice" in error_of(data)


def test_unpinned_revision_rejected(data):
    data["fetch"]["sources"]["code"] = profile_values("fetch.sources.code", scale="paper", revision="main")
    assert error_of(data) == "params.yaml: fetch.sources.code.hub.revision: Value error, pin a commit sha (or tag), not a moving branch"


def test_transpile_tier_must_exist(data):
    data["transpile"]["tiers"] = ["7k"]
    assert "transpile.tiers" in error_of(data)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("fetch: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "absent.yaml")


def test_expand_grid_is_deterministic(data):
    params = parse_params(data)
    assert list(expand_grid(params.grid)) == list(params.runs)
    assert yaml.safe_dump(data) == yaml.safe_dump(render("smoke", "phase3"))


def test_evaluate_sessions_must_be_the_baseline_plus_every_run(data):
    data["evaluate"]["sessions"].pop("condition-2-ur-5k-seed42")
    message = error_of(data)
    assert "evaluate.sessions" in message and "tools.configure" in message


def test_evaluate_max_new_tokens_needs_a_default(data):
    data["evaluate"]["max_new_tokens"] = {"mgsm": 80}
    assert "evaluate.max_new_tokens" in error_of(data) and "default" in error_of(data)


def test_evaluation_sessions_follow_the_published_layout(data):
    sessions = parse_params(data).evaluate.sessions
    assert list(sessions)[0] == "baseline"
    assert sessions["baseline"].out == "metrics/eval/phase3/conditions/baseline/seednone"
    assert sessions["baseline"].weights == "models/base"
    run = sessions["condition-5-zh-5k-c4ai-aya-expanse-32b-seed42"]
    assert run.out == "metrics/eval/phase3/conditions/condition-5-zh-5k-c4ai-aya-expanse-32b/seed42"
    assert run.weights == "models/tiny-aya-base/condition-5-zh-5k-c4ai-aya-expanse-32b-seed42"
    assert (run.condition, run.seed, run.adapter) == (
        "condition-5-zh-5k-c4ai-aya-expanse-32b", 42, "tiny-aya-base/condition-5-zh-5k-c4ai-aya-expanse-32b-seed42")
    assert (sessions["baseline"].condition, sessions["baseline"].seed, sessions["baseline"].adapter) == ("baseline", None, None)


def test_the_grid_entry_names_the_published_folder_and_the_phase_decides_the_layout():
    from tools.configure import render

    sessions = parse_params(render("smoke", "phase2")).evaluate.sessions
    run = sessions["condition-2-zh-5k"]  # Phase 2's ids carry no seed; its seed is the run's, as data
    assert (run.condition, run.seed, run.out) == ("condition-2-zh-5k", 42, "metrics/eval/phase2/conditions/condition-2-zh-5k/results")
    assert run.adapter == "condition-2-zh-5k"


def test_a_session_that_disagrees_with_its_grid_entry_is_refused(data):
    data["evaluate"]["sessions"]["condition-3-zh-5k-native-code-seed42"]["condition"] = "condition-3-zh-5k"
    assert "evaluate.sessions" in error_of(data)


def _first_run(data):
    return next(iter(data["runs"].values()))


# Issue 23 items 4 and 5: every params name that becomes a path component or reaches a shell through
# dvc.yaml's cmd is one plain name; each edit names its key
ESCAPES = {
    "native.lang": (lambda d: d["native"].update(lang="x/../../../t/native-escape"), "native.lang:"),
    "native.tier": (lambda d: d["native"].update(tier="../5k"), "native.tier:"),
    "native.fill_from": (lambda d: d["native"].update(fill_from="/etc"), "native.fill_from:"),
    "grid dataset absolute": (lambda d: d["grid"][0].update(dataset="/tmp/{lang}-{tier}"), "grid.0.dataset:"),
    "grid run_name with a slash": (lambda d: d["grid"][0].update(run_name="../{lang}-{tier}-{seed}"), "grid.0.run_name:"),
    "run dataset absolute": (lambda d: _first_run(d).update(dataset="/abs/data"), "runs.condition-1-en-5k-seed42.dataset:"),
    "package dataset": (lambda d: d["package"]["datasets"].append("../packaged"), "package.datasets:"),
    "tokenizer dataset": (lambda d: d["base"]["tokenizer_datasets"].append("a/b"), "base.tokenizer_datasets:"),
    "subset source": (lambda d: d["subset"].update(source="../code"), "subset.source:"),
    "transpile packs": (lambda d: d["transpile"].update(packs="../../x"), "transpile.packs:"),
    "transpile tier": (lambda d: d["transpile"]["tiers"].append("5k;id"), "transpile.tiers:"),
    "translate tier": (lambda d: d["translate"]["tiers"].append("5k\n"), "translate.tiers:"),
    "translate lead": (lambda d: d["translate"].update(lead_lang="ur\n"), "lead_lang"),
    "evaluate template": (lambda d: d["evaluate"]["templates"].append("../t"), "evaluate.templates:"),
    "evaluate session out": (lambda d: d["evaluate"]["sessions"]["baseline"].update(out="/tmp/x"),
                             "evaluate.sessions.baseline.out:"),
    "session id": (lambda d: d["evaluate"]["sessions"].update({"a;b": d["evaluate"]["sessions"]["baseline"]}),
                   "evaluate.sessions:"),
    "tier key with a shell command": (lambda d: d["subset"]["tiers"].update({"1k;touch PWNED;echo": 10}),
                                      "subset.tiers:"),
    "fetch source with a newline": (lambda d: d["fetch"]["sources"].update({"code\n": d["fetch"]["sources"]["code"]}),
                                    "fetch.sources:"),
}


@pytest.mark.parametrize("edit", ESCAPES)
def test_names_that_become_paths_or_commands_are_plain(data, edit):
    mutate, key = ESCAPES[edit]
    mutate(data)
    message = error_of(data)
    assert key in message, message


# Defaults the schema may keep: structure, never a study value (those live in stages/profiles/ only).
SCHEMA_DEFAULTS = {
    ("Evaluate", "sessions"),  # generated by tools.configure from grid and train.adapters_dir, never written by hand
}


def _schema_classes(cls=None):
    from stages.lib.params import Strict

    for sub in (cls or Strict).__subclasses__():
        yield sub
        yield from _schema_classes(sub)


def test_the_schema_holds_no_study_values():
    """A value lives in the profiles; the schema describes it. A default outside SCHEMA_DEFAULTS is a second home."""
    classes = list(_schema_classes())
    assert {"Train", "Filters", "LlinkDecoder", "Evaluate"} <= {cls.__name__ for cls in classes}
    defaults = {(cls.__name__, name) for cls in classes for name, field in cls.model_fields.items() if not field.is_required()}
    assert defaults - SCHEMA_DEFAULTS == set(), "move these values to stages/profiles/ (or allowlist a structural default)"
    assert SCHEMA_DEFAULTS <= defaults, "an allowlisted default is gone: drop it from SCHEMA_DEFAULTS"


def test_a_profile_without_a_key_names_it(data):
    del data["fetch"]["filters"]["min_stars"]
    assert "fetch.filters.min_stars: Field required" in error_of(data)


def test_a_profile_without_adapters_dir_is_named_not_filled_in(tmp_path):
    """tools.configure makes the sessions from train.adapters_dir; without it the schema names the key."""
    import shutil

    from tools.configure import PROFILES

    profiles = shutil.copytree(PROFILES, tmp_path / "profiles")
    base = profiles / "base.yaml"
    text = base.read_text(encoding="utf-8")
    assert text.count("  adapters_dir: models/tiny-aya-base\n") == 1
    base.write_text(text.replace("  adapters_dir: models/tiny-aya-base\n", ""), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"profiles phase3-smoke: train\.adapters_dir: Field required"):
        render("smoke", "phase3", profiles)
