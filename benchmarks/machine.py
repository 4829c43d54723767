"""The machine a speed figure was measured on, in one line, for the scripts that print figures.

The core count alone is not enough: two 2-core machines that both call themselves "AMD EPYC" built the
smoke pipeline 1.9x apart (README, "Speed"). Family, model and the widest vector instructions tell them apart.
"""

from __future__ import annotations

import os
import platform


def describe(cpuinfo: str = "/proc/cpuinfo") -> str:
    """``AMD EPYC (family 25, model 17, AVX-512), 2 cores``; elsewhere than Linux, what ``platform`` knows."""
    cores = os.cpu_count() or 1
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            first = handle.read().split("\n\n", 1)[0]
    except OSError:
        return f"{platform.processor() or platform.machine()}, {cores} cores"
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    name = fields.get("model name") or platform.processor() or platform.machine()
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {widest}), {cores} cores"


if __name__ == "__main__":
    print(describe())
