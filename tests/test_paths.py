"""The layout rules: safe_join keeps a path made from params inside its folder; the published result
folders and file names are made and read back in one place."""

from __future__ import annotations

import pytest

from stages.lib.paths import (
    LayoutError, PathEscapeError, ResultFile, condition_parts, eval_folder, parse_result_file_name, result_file_name,
    safe_join,
)


def test_names_inside_the_root_join_as_given(tmp_path):
    assert safe_join(tmp_path / "data", "packaged", "condition-2-zh-5k") == tmp_path / "data" / "packaged" / "condition-2-zh-5k"


@pytest.mark.parametrize("parts", [("x/../../../t",), ("/abs/dataset",), ("..",), ("",), ("a", "..")])
def test_a_path_outside_the_root_or_the_root_itself_is_refused(tmp_path, parts):
    with pytest.raises(PathEscapeError, match=r"is not inside .*data"):
        safe_join(tmp_path / "data", *parts)


def test_a_link_out_of_the_root_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "escape").symlink_to(tmp_path)
    with pytest.raises(PathEscapeError, match="escape"):
        safe_join(tmp_path / "data", "escape", "t")


def test_the_phase_alone_decides_a_session_folder():
    assert eval_folder("phase3", "condition-3-zh-5k-native-code", 42) == "phase3/conditions/condition-3-zh-5k-native-code/seed42"
    assert eval_folder("phase3", "baseline", None) == "phase3/conditions/baseline/seednone"
    assert eval_folder("phase2", "condition-2-zh-5k", 42) == "phase2/conditions/condition-2-zh-5k/results"


@pytest.mark.parametrize("args", [
    ("condition-5-zh-5k-c4ai-aya-expanse-32b", 42, "results", "template1", None),
    ("baseline", None, "summary_reparsed", "template2", None),
    ("condition-2-ur-5k", 123, "summary_loglik", "all", 3),
    ("condition-2-ur-5k_seed42", 7, "summary", "template1", None),  # a name with _seed in it reads back too
])
def test_a_result_file_name_reads_back_as_made(args):
    condition, seed, kind, template, smoke = args
    name = result_file_name(condition, seed, kind, template, smoke)
    assert parse_result_file_name(name) == ResultFile(condition, "none" if seed is None else str(seed), kind, template, smoke)
    assert parse_result_file_name(name).sibling("results") == result_file_name(condition, seed, "results", template, smoke)


@pytest.mark.parametrize("name", ["x_results_template1.json", "c_seed42_results_template1.txt", "c_seedX_summary_all.json",
                                  "c_seed42_summaries_template1.json", "english_prompt_results.json"])
def test_other_names_are_not_result_files(name):
    assert parse_result_file_name(name) is None


def test_unknown_kinds_are_refused_when_making_a_name():
    with pytest.raises(ValueError, match="kind must be one of"):
        result_file_name("baseline", None, "summery", "template1")


def test_condition_folder_names_read_as_number_language_tier():
    assert condition_parts("condition-5-ur-5k-c4ai-aya-expanse-32b") == {"number": 5, "lang": "ur", "tier": "5k"}
    assert condition_parts("condition-2-fr-20k") == {"number": 2, "lang": "fr", "tier": "20k"}
    assert condition_parts("baseline") == {"number": 0, "lang": None, "tier": None}
    with pytest.raises(LayoutError, match="'cond-2' is not condition-<N>-<lang>-<tier>"):
        condition_parts("cond-2")
