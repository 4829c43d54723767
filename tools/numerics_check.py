"""numerics_check: does this machine's CPU compute the bits the committed results were built with?

    python -m tools.numerics_check           # this machine's hashes (JSON); exit 1 if they differ
    python -m tools.numerics_check --write   # make this machine's hashes the committed ones

The pins of ``stages/lib/numerics.py`` are meant to make every x86-64 machine with AVX2 compute the
same float32 bits, so that a clone rebuilds the committed ``dvc.lock``. Whether a machine does is a
measurement, not a promise: this module computes two sha256 under the pins (a probe of the products
and kernels that differed between machines, and two training steps of a tiny model of the smoke
base's architecture) and compares them with ``tests/data/numerics_hashes.json``, written on the
machine that built the committed results. ``tests/test_numerics.py`` runs it on every machine the
tests run on. A mismatch means this machine's rebuilds will not match ``dvc.lock`` from ``base`` on
(data stages are not affected); a mismatch in ``torch`` or ``transformers`` names a version change
instead, which changes the rebuilt bytes too.

Only ``--write`` changes the committed file: do that on the machine that builds the committed
results, together with that rebuild.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

from stages.lib.numerics import cpu_numerics

COMMITTED = Path(__file__).resolve().parents[1] / "tests" / "data" / "numerics_hashes.json"
# what must agree; the rest of the file records where and under what the hashes were made
COMPARED = ("probe", "train_step", "torch", "transformers")


def _digest(tensors) -> str:
    return hashlib.sha256(b"".join(t.detach().contiguous().numpy().tobytes() for t in tensors)).hexdigest()


def probe() -> str:
    """sha256 of products MKL splits by thread count (long inner dimension, tiny outputs) and by code
    branch, then ATen's vectorised softmax and layer norm. Unpinned on an AVX-512 machine, 1 thread,
    2 threads and an AVX2-capped MKL gave three different hashes; on an AMD EPYC, ``MKL_CBWR`` at
    ``AVX2,STRICT`` and at ``COMPATIBLE`` give two."""
    import torch

    torch.manual_seed(0)
    parts = [torch.randn(m, k) @ torch.randn(k, n) for m, k, n in [(4, 65536, 4), (16, 16384, 16), (2, 8192, 2048)]]
    a = torch.randn(64, 4096)
    parts.append(torch.nn.functional.softmax(a @ torch.randn(4096, 64), dim=-1))
    parts.append(torch.nn.functional.layer_norm(a, (4096,)).exp().sum(-1))
    return _digest(parts)


def train_step() -> str:
    """sha256 of the losses and weights after two AdamW steps (gradient clipping as in training) of a
    tiny ``Cohere2ForCausalLM`` (width 64, one sliding and one full attention layer, vocabulary 4096),
    the smoke base's architecture: the kernels the base, train and evaluate stages run, in a second."""
    import torch
    from transformers import Cohere2Config, Cohere2ForCausalLM

    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(0)
        config = Cohere2Config(
            vocab_size=4096, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, sliding_window=16,
            layer_types=["sliding_attention", "full_attention"], pad_token_id=0, bos_token_id=5, eos_token_id=3)
        model = Cohere2ForCausalLM(config).to(torch.float32).train()
        ids = torch.randint(6, 4096, (4, 48))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
        losses = []
        for _ in range(2):
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().reshape(1))
        return _digest([*losses, *(p for _, p in sorted(model.named_parameters()))])
    finally:
        torch.use_deterministic_algorithms(deterministic)


def cpu_model() -> str:
    """The processor's name as Linux reports it (``platform.processor()`` elsewhere), for the record."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def fingerprint() -> dict:
    """The two hashes; the versions that decide them; the pins, kernel level and processor in force."""
    import torch
    import transformers

    return {"probe": probe(), "train_step": train_step(), "torch": torch.__version__,
            "transformers": transformers.__version__, "aten_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_numerics": cpu_numerics(), "cpu": cpu_model()}


def differences(here: dict, committed: dict) -> list[str]:
    """One line per compared key that differs, with what a difference there means."""
    lines = [f"{key}: here {here.get(key)}, committed {committed.get(key)}" for key in COMPARED
             if here.get(key) != committed.get(key)]
    if not lines:
        return []
    versions = any(here.get(key) != committed.get(key) for key in ("torch", "transformers"))
    cause = ("the package versions differ from those the committed hashes were made with"
             if versions else
             f"this machine ({here.get('cpu')}, ATen at {here.get('aten_capability')}, {here.get('cpu_numerics')}) "
             f"computes other float32 bits than the machine that built the committed results "
             f"({committed.get('cpu')}, {committed.get('cpu_numerics')})")
    return [*lines, f"{cause}: a rebuild here will not match dvc.lock from `base` on (data stages are unaffected). "
            "Pull the committed outputs (`dvc pull`) instead of rebuilding them; if this machine is to build the "
            "committed results from now on, rebuild them all and run `python -m tools.numerics_check --write`."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write this machine's hashes to {COMMITTED}")
    args = parser.parse_args(argv)
    here = fingerprint()
    text = json.dumps(here, indent=2, sort_keys=True) + "\n"
    if args.write:
        COMMITTED.write_text(text, encoding="utf-8")
        print(f"numerics_check: wrote {COMMITTED}", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    problems = differences(here, json.loads(COMMITTED.read_text(encoding="utf-8")))
    for line in problems:
        print(f"numerics_check: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
