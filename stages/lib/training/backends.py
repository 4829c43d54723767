"""The train stage's backends (``train.backend``), each importing its libraries lazily.

- ``peft-cpu`` (smoke): plain PEFT LoRA on a float32 base on CPU with the transformers
  ``Trainer``. Deterministic: ``torch.use_deterministic_algorithms(True)`` (restored after the
  run), the seeded sampler, no dataloader workers, no dropout, and the CPU kernels pinned at
  AVX2 with MKL on its COMPATIBLE branch and one MKL thread (stages/lib/numerics.py). Runs write
  byte-identical ``adapter_model.safetensors`` and ``training_metrics.json`` on any x86-64 CPU
  with AVX2, whatever its thread count (logged in ``logs/train-<run>.json``); unpinned, 1 and 2
  threads and an AVX2-capped MKL gave three different adapters on one AVX-512 machine.
- ``peft-bnb`` (the paper's QLoRA without Unsloth): a bitsandbytes NF4 4-bit base (double
  quantisation, as Unsloth loads it; compute dtype float16 with ``fp16``, else float32),
  ``prepare_model_for_kbit_training``, PEFT LoRA, the transformers Trainer. On a GPU, or on the
  CPU where there is none (bitsandbytes 0.50.2 runs NF4 on CPU): tests/test_qlora_cpu.py trains,
  saves, reloads and evaluates such an adapter on CPU.
- ``unsloth`` (GPU; the paper's path): ``unsloth.FastModel.from_pretrained(..., load_in_4bit=True,
  dtype=<the params' precision>, use_exact_model_name=True)`` (:func:`unsloth_load_kwargs`) and
  ``FastModel.get_peft_model(..., random_state=seed, use_gradient_checkpointing="unsloth")``,
  trained with the transformers Trainer and the same collator (the original used trl's
  SFTTrainer, which with a custom collator and a pre-tokenised dataset reduces to the same loop).
  Unsloth is imported before transformers.

Unsloth cannot run here (no GPU); its arguments are tested. GPU QLoRA is not bit-exact (atomics
in the 4-bit kernels and cuBLAS reductions); what is pinned there instead is the data, its
order, the seeds, the recipe and the package versions in run_config.json.
"""

from __future__ import annotations

import os
from pathlib import Path

from stages.lib.base_weights import base_source
from stages.lib.loading import load_causal_lm, nf4_config
from stages.lib.params import Base, Train
from stages.lib.training import TrainError

# the distributions whose versions decide an adapter's bytes. bitsandbytes and Unsloth only on the
# backends that load them: recorded elsewhere, a plain install (no dev or gpu extra) and a dev install
# would write different run_config.json bytes for the same adapter.
TRAIN_PACKAGES = ("accelerate", "datasets", "peft", "safetensors", "tokenizers", "torch", "transformers", "trl")


BACKEND_PACKAGES = {"peft-cpu": (), "peft-bnb": ("bitsandbytes",), "unsloth": ("bitsandbytes", "unsloth", "unsloth_zoo")}


def train_packages(backend: str) -> tuple[str, ...]:
    return tuple(sorted(TRAIN_PACKAGES + BACKEND_PACKAGES[backend]))


def _lora_config(train: Train):
    from peft import LoraConfig

    return LoraConfig(
        r=train.lora.r,
        lora_alpha=train.lora.alpha,
        lora_dropout=train.lora.dropout,
        bias=train.lora.bias,
        target_modules=list(train.lora.target_modules),
        task_type="CAUSAL_LM",
    )


def load_peft_cpu(train: Train, base: Base, base_dir: Path, seed: int):
    import torch
    from peft import get_peft_model
    from transformers import set_seed

    source, kwargs = base_source(base, base_dir)
    model = load_causal_lm(source, dtype=torch.float32, **kwargs)
    model.config.use_cache = False
    set_seed(seed)  # the LoRA A matrices are drawn now, under the run's seed
    return get_peft_model(model, _lora_config(train))


def compute_dtype(train: Train) -> str:
    """The precision the params say, one dtype for the weights, the NF4 compute and the Trainer's autocast:
    float16 with ``fp16`` (the original's T4 recipe), else float32. TrainingArguments gets ``fp16`` and
    never ``bf16``, so a base loaded in bfloat16 would train under a float16 autocast (Unsloth's own TRL
    path refuses that pairing): every backend loads in this dtype instead of choosing its own."""
    return "float16" if train.fp16 else "float32"


def load_peft_bnb(train: Train, base: Base, base_dir: Path, seed: int):
    """NF4 4-bit base (double quantisation, as Unsloth and evaluation load it), PEFT LoRA. On this
    process's GPU (its LOCAL_RANK under torchrun), or on the CPU where there is none: bitsandbytes
    0.50.2 runs NF4 ``Linear4bit`` on CPU, so CI trains the paper's method (tests/test_qlora_cpu.py)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    source, kwargs = base_source(base, base_dir)
    dtype = getattr(torch, compute_dtype(train))
    if train.load_in_4bit:
        kwargs["quantization_config"] = nf4_config(dtype)
    device = int(os.environ.get("LOCAL_RANK", "0")) if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(source, dtype=dtype, device_map={"": device}, **kwargs)
    model.config.use_cache = False
    if train.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    set_seed(seed)
    return get_peft_model(model, _lora_config(train))


def import_unsloth():
    """``unsloth.FastModel``, imported before transformers as Unsloth asks (it patches transformers on import)."""
    try:
        from unsloth import FastModel
    except ImportError as error:  # the `gpu` extra
        raise TrainError(f"backend unsloth: cannot import unsloth ({error}); install the gpu extra") from None
    return FastModel


def unsloth_load_kwargs(train: Train, base: Base, base_dir: Path) -> dict:
    """``FastModel.from_pretrained``'s arguments but the safety flags (read against unsloth 2026.10.9, models/loader.py and vision.py):

    - ``dtype``: without it Unsloth loads bfloat16 on any bf16-capable GPU (vision.py: ``dtype = float16 if
      not SUPPORTS_BFLOAT16 else bfloat16``) and uses it as the NF4 compute dtype, under our fp16 autocast;
    - ``use_exact_model_name=True``: otherwise its name mapper may swap the repo for a pre-quantised mirror
      and drop the pinned revision (loader.py ``_revision_for_resolved_repo``);
    - its 4-bit config always has ``bnb_4bit_use_double_quant=True``: :func:`nf4_config` matches it.
    """
    import torch

    source, kwargs = base_source(base, base_dir)
    return {
        "model_name": source,
        "max_seq_length": train.max_seq_length,
        "dtype": getattr(torch, compute_dtype(train)),
        "load_in_4bit": train.load_in_4bit,
        "full_finetuning": False,
        "use_exact_model_name": True,
        **kwargs,
    }


def load_unsloth(train: Train, base: Base, base_dir: Path, seed: int):
    """GPU only: the original's FastModel path (not runnable here: Unsloth needs a CUDA GPU)."""
    FastModel = import_unsloth()
    from transformers import set_seed

    set_seed(seed)
    model, _ = FastModel.from_pretrained(
        **unsloth_load_kwargs(train, base, base_dir), trust_remote_code=False, use_safetensors=True
    )
    return FastModel.get_peft_model(
        model,
        r=train.lora.r,
        lora_alpha=train.lora.alpha,
        lora_dropout=train.lora.dropout,
        bias=train.lora.bias,
        target_modules=list(train.lora.target_modules),
        random_state=seed,
        use_gradient_checkpointing="unsloth",
    )


BACKENDS = {"peft-cpu": load_peft_cpu, "peft-bnb": load_peft_bnb, "unsloth": load_unsloth}

