"""CPU numerics are pinned for every stage process, and this machine computes the committed bits.

The committed results are only what a machine rebuilds if it computes the same float32 bits as the
machine that built them. ``tests/data/numerics_hashes.json`` holds that machine's hashes of a probe and
of two training steps (``tools/numerics_check.py``); the tests below compare this machine's with them,
as configured and playing a larger machine, so every CI run checks the promise wherever it lands.
"""

import json
import os
import subprocess
import sys

import pytest

from stages.lib.numerics import PINNED_CPU_NUMERICS, cpu_numerics, pin_cpu_numerics
from tools.numerics_check import COMMITTED, differences

# A larger machine, as far as one machine can play it: 8 OpenMP threads that MKL may not scale down
# (MKL_DYNAMIC, on by default, keeps it to the physical cores), MKL held to AVX2 instructions. Under
# the previous pins (MKL_CBWR=AVX2,STRICT) an AMD EPYC gave other probe and training-step bits here.
LARGER_MACHINE = {"OMP_NUM_THREADS": "8", "MKL_DYNAMIC": "FALSE", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def run_check(repo_root, **env):
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_CPU_NUMERICS}
    done = subprocess.run([sys.executable, "-m", "tools.numerics_check"], cwd=repo_root, env={**clean, **env},
                          capture_output=True, text=True)
    assert done.stdout, done.stderr
    return json.loads(done.stdout), done


def test_pin_sets_each_variable_and_keeps_an_explicit_override():
    environ = {"MKL_CBWR": "AUTO"}
    pin_cpu_numerics(environ)
    assert environ["MKL_CBWR"] == "AUTO"
    assert environ["ATEN_CPU_CAPABILITY"] == "avx2" and environ["DNNL_MAX_CPU_ISA"] == "AVX2"
    assert environ["MKL_NUM_THREADS"] == "1"
    assert cpu_numerics(environ) == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AUTO", "MKL_NUM_THREADS": "1",
                                     "DNNL_MAX_CPU_ISA": "AVX2"}


@pytest.mark.parametrize("machine", [{}, LARGER_MACHINE], ids=["as-configured", "larger-machine"])
def test_this_machine_computes_the_committed_bits(repo_root, machine):
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    here, done = run_check(repo_root, **machine)
    assert here["aten_capability"] == "AVX2", here  # ATen held below the machine's best
    assert here["cpu_numerics"] == PINNED_CPU_NUMERICS
    # a mismatch: rebuilds on this machine will not match dvc.lock; the message says why and what to do
    assert differences(here, committed) == [], "\n".join(differences(here, committed))
    assert done.returncode == 0, done.stderr


def test_a_mismatch_names_the_machine_or_the_versions_and_what_to_do():
    committed = {"probe": "a", "train_step": "b", "torch": "2.13.0+cpu", "transformers": "5.17.0",
                 "cpu": "Intel Xeon", "cpu_numerics": PINNED_CPU_NUMERICS}
    assert differences(dict(committed), committed) == []
    other_machine = differences({**committed, "probe": "c", "cpu": "AMD EPYC"}, committed)
    assert other_machine[0] == "probe: here c, committed a"
    assert "this machine (AMD EPYC" in other_machine[-1] and "(Intel Xeon" in other_machine[-1]
    assert "will not match dvc.lock" in other_machine[-1] and "numerics_check --write" in other_machine[-1]
    other_torch = differences({**committed, "torch": "2.14.0+cpu", "train_step": "d"}, committed)
    assert [line.split(":")[0] for line in other_torch[:-1]] == ["train_step", "torch"]
    assert other_torch[-1].startswith("the package versions differ")


def test_stage_provenance_records_the_numerics_in_force(tmp_path, monkeypatch):
    from stages.lib.provenance import code_provenance

    monkeypatch.setenv("MKL_CBWR", "AUTO")
    assert code_provenance(tmp_path)["cpu_numerics"]["MKL_CBWR"] == "AUTO"
