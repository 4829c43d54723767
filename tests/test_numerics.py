"""CPU numerics are pinned for every stage process: the same bits whatever the thread count or MKL path."""

import os
import subprocess
import sys

from stages.lib.numerics import PINNED_CPU_NUMERICS, cpu_numerics, pin_cpu_numerics

# Products whose sums MKL splits by thread count (long inner dimension, tiny outputs) and by its
# instruction set, then ATen's own vectorised softmax and layer norm. Unpinned on an AVX-512
# machine, 1 thread, 2 threads and an AVX2-capped MKL give three different hashes here.
PROBE = """
import hashlib, sys
import stages  # pins CPU numerics, as `python -m stages.<name>` does
import torch
torch.manual_seed(0)
parts = [(torch.randn(m, k) @ torch.randn(k, n)) for m, k, n in [(4, 65536, 4), (16, 16384, 16), (2, 8192, 2048)]]
a = torch.randn(64, 4096)
parts.append(torch.nn.functional.softmax(a @ torch.randn(4096, 64), dim=-1))
parts.append(torch.nn.functional.layer_norm(a, (4096,)).exp().sum(-1))
print(hashlib.sha256(b"".join(p.numpy().tobytes() for p in parts)).hexdigest(), torch.backends.cpu.get_cpu_capability())
"""


def run_probe(repo_root, **env):
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_CPU_NUMERICS}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=repo_root, env={**clean, **env},
                          capture_output=True, text=True, check=True)
    digest, capability = done.stdout.split()
    return digest, capability


def test_pin_sets_each_variable_and_keeps_an_explicit_override():
    environ = {"MKL_CBWR": "AUTO"}
    pin_cpu_numerics(environ)
    assert environ["MKL_CBWR"] == "AUTO"
    assert environ["ATEN_CPU_CAPABILITY"] == "avx2" and environ["DNNL_MAX_CPU_ISA"] == "AVX2"
    assert cpu_numerics(environ) == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AUTO", "DNNL_MAX_CPU_ISA": "AVX2"}


def test_same_bits_with_one_or_two_threads_and_an_avx2_capped_mkl(repo_root):
    one_thread = run_probe(repo_root, OMP_NUM_THREADS="1")
    # a second machine, as far as one machine can play it: other thread count, MKL held to AVX2
    other = run_probe(repo_root, OMP_NUM_THREADS="2", MKL_ENABLE_INSTRUCTIONS="AVX2")
    assert one_thread == other
    assert one_thread[1] != "AVX512"  # ATen held below the machine's best


def test_stage_provenance_records_the_numerics_in_force(tmp_path, monkeypatch):
    from stages.lib.provenance import code_provenance

    monkeypatch.setenv("MKL_CBWR", "AUTO")
    assert code_provenance(tmp_path)["cpu_numerics"]["MKL_CBWR"] == "AUTO"
