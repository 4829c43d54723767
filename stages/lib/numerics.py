"""CPU floating point pinned to one code path, so smoke outputs are the same bytes on any x86-64 machine.

PyTorch's CPU kernels pick their instruction set (AVX2, AVX-512, AMX) from the machine, and MKL's
matrix products also split work by thread count and cache size. Each choice sums in another order, so
the same training step on two machines, or on one machine with 1 and 2 threads, wrote different
adapter bytes (measured: the smoke adapter of condition-1-en-5k-seed42 had three different sha256
for 1 thread, 2 threads, and an AVX2-capped MKL on one AVX-512 machine). The three variables below fix
the path: ATen's kernels at AVX2, MKL's Conditional Numerical Reproducibility at its AVX2 branch in
strict mode (independent of thread count), oneDNN at most AVX2. Any x86-64 CPU with AVX2 (Intel
since 2013, AMD since 2015) then computes the same bits; aarch64 machines use other BLAS libraries
and are not covered.

They must be in the environment before torch loads: ``stages/__init__.py`` calls
:func:`pin_cpu_numerics` so every ``python -m stages.<name>`` gets them. A value already set is
kept (an explicit override, for speed on a large CPU run), and ``provenance.json`` records the values
in force. GPU kernels are not affected.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

PINNED_CPU_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "DNNL_MAX_CPU_ISA": "AVX2",
}


def pin_cpu_numerics(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each pinned variable unless the environment already names a value."""
    for name, value in PINNED_CPU_NUMERICS.items():
        environ.setdefault(name, value)


def cpu_numerics(environ: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """The values in force, for provenance: an override shows here."""
    return {name: environ.get(name) for name in PINNED_CPU_NUMERICS}
