"""CPU floating point pinned to one code path, so smoke outputs are the same bytes on Intel and AMD x86-64.

PyTorch's CPU kernels pick their instruction set (AVX2, AVX-512, AMX) from the machine, MKL picks its
matrix-product code from the processor's maker and model, and both split sums by thread count. Each
choice sums in another order, so the same training step on two machines, or on one machine with 1 and
2 threads, wrote different adapter bytes. The pins below fix the path:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's own kernels (softmax, layer norm, attention, AdamW) at AVX2.
  They are the same instructions on any AVX2 CPU, whoever made it.
- ``MKL_CBWR=COMPATIBLE``: MKL's products (every float32 ``matmul`` of the CPU wheel is an MKL
  ``sgemm``) on its SSE2 code branch, the one MKL documents as giving the same results on Intel and
  compatible processors. The earlier pin, ``AVX2,STRICT``, is an Intel-only branch: on an AMD EPYC, MKL
  silently ran ``AUTO,STRICT`` instead (``MKL_VERBOSE=1`` says so), whose bits are not those of Intel's
  AVX2 branch, and the committed results built on Intel did not rebuild there from ``base`` on.
- ``MKL_NUM_THREADS=1``: ``COMPATIBLE`` is not MKL's thread-count-independent (strict) mode, and on the
  AMD machine 1, 3 and 8 MKL threads gave three different products. One thread for MKL, and through
  it for ATen (``torch.get_num_threads()`` follows ``MKL_NUM_THREADS`` before ``OMP_NUM_THREADS``),
  makes the bits independent of the core count. The smoke stages ran one thread each already
  (``tools.repro --jobs 2`` on 2 cores), and the tiny models are no faster on two.
- ``DNNL_MAX_CPU_ISA=AVX2``: oneDNN at most AVX2, should a kernel reach it (the smoke path does not).

Measured on an AMD EPYC (AVX2, no AVX-512): the probe and training step of ``tools/numerics_check.py``
give one hash each with ``OMP_NUM_THREADS`` at 1, 2 and 8 (``MKL_DYNAMIC=FALSE``). Intel under these
pins was not measured. ``tests/data/numerics_hashes.json`` holds the hashes computed where the committed
results were built; ``python -m tools.numerics_check`` compares this machine's with them, and
``tests/test_numerics.py`` does so on every machine the tests run on.

They must be in the environment before torch loads: ``stages/__init__.py`` calls
:func:`pin_cpu_numerics` so every ``python -m stages.<name>`` gets them. A value already set is
kept (an explicit override, for speed on a large CPU run, at the price of other bits), and
``provenance.json`` records the values in force. GPU kernels are not affected.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

PINNED_CPU_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_NUM_THREADS": "1",
    "DNNL_MAX_CPU_ISA": "AVX2",
}


def pin_cpu_numerics(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each pinned variable unless the environment already names a value."""
    for name, value in PINNED_CPU_NUMERICS.items():
        environ.setdefault(name, value)


def cpu_numerics(environ: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """The values in force, for provenance: an override shows here."""
    return {name: environ.get(name) for name in PINNED_CPU_NUMERICS}
