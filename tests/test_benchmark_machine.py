"""benchmarks/machine.py: the one line that says which machine a speed figure comes from."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import machine  # noqa: E402

# two processors of a real /proc/cpuinfo, cut to the fields that matter; only the first is read
ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw

processor\t: 1
cpu family\t: 99
model name\t: not this one
"""


def test_family_model_and_widest_vector_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 2)
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN4, encoding="utf-8")
    assert machine.describe(str(info)) == "AMD EPYC (family 25, model 17, AVX-512), 2 cores"
    info.write_text(ZEN4.replace(" avx512f avx512bw", ""), encoding="utf-8")
    assert machine.describe(str(info)) == "AMD EPYC (family 25, model 17, AVX2), 2 cores"


def test_without_proc_cpuinfo_it_still_names_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 16)
    assert machine.describe(str(tmp_path / "absent")).endswith(", 16 cores")
