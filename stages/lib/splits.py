"""The original's deterministic subset draw and train/validation split, shared by every
stage that makes a condition dataset (subset for condition 1, native for condition 3).

``draw_paths`` is ``create_subset.py``'s draw: sorted paths, ``random.Random(seed).sample``,
sorted again. ``split_indices`` is ``datasets``' ``train_test_split(test_size, seed=seed)``:
``np.random.default_rng(seed).permutation(n)``, the first ``ceil(test_size * n)`` indices
for validation, the rest for train, both in permutation order.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np

from stages.lib.errors import StageError


class SubsetError(StageError, ValueError):
    pass


def draw_paths(paths: list[str], size: int, seed: int) -> list[str]:
    """The original's draw; all paths when the pool is smaller than the tier."""
    counts = Counter(paths)
    if len(counts) != len(paths):
        duplicates = sorted(p for p, n in counts.items() if n > 1)[:5]
        raise SubsetError(f"duplicate file_path in the pool: {duplicates}")
    ordered = sorted(paths)
    if size >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, size))


def split_indices(n: int, test_size: float, seed: int) -> dict[str, list[int]]:
    """Row indices of each split, as ``Dataset.train_test_split(test_size, seed=seed)``."""
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_test == 0 or n_train == 0:
        raise SubsetError(f"a split of {n} rows with test_size {test_size} leaves one split empty")
    permutation = np.random.default_rng(seed).permutation(n)
    return {"validation": permutation[:n_test].tolist(), "train": permutation[n_test : n_test + n_train].tolist()}
