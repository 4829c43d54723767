"""subset: the original's draw and HF's split, reproduced exactly."""

import random

import pytest
from datasets import Dataset

from stages.lib.splits import SubsetError, draw_paths, split_indices
from stages.subset import build_splits


def pool(n: int) -> list[dict]:
    return [{"file_path": f"{i:09d}_repo_file_{i:012x}.py", "code": f"def f{i}():\n    return {i}\n", "license": "MIT"} for i in range(n)]


def test_draw_is_the_original_algorithm():
    paths = [f"p{i:05d}" for i in range(1000)][::-1]  # unsorted input
    expected = sorted(random.Random(42).sample(sorted(paths), 100))
    assert draw_paths(paths, 100, 42) == expected
    assert draw_paths(paths, 100, 43) != expected


def test_small_pool_uses_every_path():
    assert draw_paths(["b", "a"], 5, 42) == ["a", "b"]


def test_duplicate_paths_are_fatal():
    with pytest.raises(SubsetError, match="duplicate file_path"):
        draw_paths(["a", "a", "b"], 2, 42)


@pytest.mark.parametrize("n", [10, 60, 200, 5000])
def test_split_equals_datasets_train_test_split(n):
    ours = split_indices(n, 0.1, 42)
    theirs = Dataset.from_dict({"i": list(range(n))}).train_test_split(test_size=0.1, seed=42)
    assert ours["train"] == theirs["train"]["i"]
    assert ours["validation"] == theirs["test"]["i"]


def test_5k_split_sizes():
    sizes = split_indices(5000, 0.1, 42)
    assert (len(sizes["train"]), len(sizes["validation"])) == (4500, 500)


def test_5k_is_inside_20k_above_the_set_branch_threshold():
    # random.sample takes its set-based branch for a population above ~65.6k, which makes
    # the seed-42 5k draw the first 5000 picks of the 20k draw (data-pipeline.md 2.1).
    paths = [f"{i:09d}.py" for i in range(70_000)]
    assert set(draw_paths(paths, 5000, 42)) <= set(draw_paths(paths, 20000, 42))


def test_idx_is_the_row_position_in_each_split():
    selected, splits = build_splits(pool(50), 40, 42, 0.1)
    assert len(selected) == 40
    for split, rows in splits.items():
        assert [r["idx"] for r in rows] == list(range(len(rows)))
    train_paths = {r["file_path"] for r in splits["train"]}
    validation_paths = {r["file_path"] for r in splits["validation"]}
    assert not train_paths & validation_paths and train_paths | validation_paths == set(selected)
    assert all(r["code"] == r["code_en"] and r["language"] == "en" for r in splits["train"])


def test_one_empty_split_is_an_error():
    with pytest.raises(SubsetError, match="empty"):
        split_indices(1, 0.1, 42)
