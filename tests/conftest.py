"""Test-wide settings: offline, no analytics, repository root importable."""

import copy
import functools
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Stage commands the tests start run as plain processes: a test's own environment would start a warm
# interpreter of its own (stages/lib/warm.py). tests/test_warm.py and tests/e2e turn it on where they test it.
os.environ.setdefault("LDR_WARM", "0")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@functools.cache
def _rendered(scale: str, phase: str) -> dict:
    from tools.configure import render

    return render(scale, phase)


def profile_values(section: str, scale: str = "smoke", phase: str = "phase3", **overrides) -> dict:
    """The rendered profile's values of a params section (dotted: ``"fetch.filters"``), updated by ``overrides``.

    The schema holds no study values, so a test that builds a schema class takes what the profiles say and
    spells out only what it changes: ``Train(**profile_values("train", save_steps=None))``."""
    values = _rendered(scale, phase)
    for key in section.split("."):
        values = values[key]
    return {**copy.deepcopy(values), **overrides}
