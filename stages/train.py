"""train: one LoRA adapter per run of the grid, as the study trained it.

    python -m stages.train --run condition-2-zh-5k-seed42     # dvc.yaml: train@condition-2-zh-5k-seed42

Reads the ``train`` split of ``data/packaged/<run.dataset>/`` (the validation split is never
used, as in the original), the tokenizer the base stage saved in ``models/base`` and the base
model (smoke: the tiny ``Cohere2ForCausalLM`` in ``models/base``; paper: ``base.repo`` at
``base.revision`` from the Hugging Face cache). Writes ``<train.adapters_dir>/<run id>/``
(``models/tiny-aya-base/<run id>/`` in Phase 3; Phase 2 uses the card's flat
``models/<run id>/``, e.g. ``models/condition-2-zh-5k/``):

- ``adapter_config.json``, ``adapter_model.safetensors`` (PEFT's ``save_pretrained``, safetensors
  only), loadable as the seed card shows:
  ``PeftModel.from_pretrained(base, "models", subfolder="tiny-aya-base/<run id>")``;
- ``training_metrics.json``: the original's ``{model_config_name, condition_name, seed,
  output_name, train_result, log_history}`` plus ``data`` (rows, tokens, steps, warmup, batch),
  with every wall-clock field (``train_runtime``, ``*_per_second``) removed so that a rerun
  writes the same bytes; those fields go to the uncached ``logs/train-<run id>.json``;
- ``run_config.json``: the resolved train and base params, the run, its seed, the dataset's
  sha256, the base's identity and package versions;
- ``provenance.json``: the same content provenance plus the git commit;

and ``metrics/train/<run id>/``: ``loss.tsv`` (step, epoch, loss, grad_norm, learning_rate: the
logged loss curve, appended at every logging step while the run trains, stages/lib/train_log.py;
a ``dvc plots`` source) and ``summary.json`` (the adapter's sha256, the train loss, steps, rows,
tokens; a DVC metric, and what the manifest stage depends on). Progress bars show in a terminal
only (stages/lib/progress.py).

What is reproduced (data-pipeline.md section 6 and section 11, items 17-22):

- each file is one example: ``tokenizer(code, truncation=True, max_length=max_seq_length)`` with
  the tokenizer's default special tokens, no padding, no packing (the original configured
  ``packing=True``, but its custom collator made Unsloth skip packing);
  ``DataCollatorForLanguageModeling(mlm=False)`` pads each batch to its longest row and masks
  the padding out of the labels;
- seeds: ``set_seed(seed)``, the LoRA initialisation under that seed (Unsloth:
  ``random_state=seed``), and the trainer's ``seed`` and ``data_seed`` = the run's seed;
- the batch: the original ran per-device batch 8 on 2 GPUs with DDP (global 16, no
  accumulation). ``train.processes`` is how many processes this stage trains with: with 1 it
  accumulates ``world_size`` micro-batches of 8 per optimizer step; with 2 it re-launches
  itself under ``torchrun --standalone --nproc_per_node=2`` (DDP: gloo on CPU, NCCL on GPUs)
  and each rank accumulates ``world_size / processes``. Either way the global batch is
  per_device x world_size = 16 and steps = ceil(rows / 16) (282 for the 4,500-row 5k split).
  The micro-batches of one step are the same 16 rows of the same shuffled order that the
  ranks split between them (accelerate hands consecutive batches of the sampler to the
  ranks), and the loss is the token mean over all 16 rows in both cases
  (``average_tokens_across_devices`` vs. ``num_items_in_batch`` across accumulation), so the
  loss curves agree to float rounding (tests/test_train.py). One difference is the
  original's: when rows are not a multiple of 16, DDP pads the last step with rows from the
  start of the epoch (accelerate's ``even_batches``), where one process takes a short step.
  Only rank 0 writes the adapter, metrics and logs;
- warmup steps = ceil(warmup_ratio x steps), computed here and passed as ``warmup_steps``
  (15 for 282 steps), cosine decay, AdamW with weight decay 0.01, max grad norm 1.0.

Backends (``train.backend``), each imported lazily:

- ``peft-cpu`` (smoke): plain PEFT LoRA on a float32 base on CPU with the transformers
  ``Trainer``. Deterministic: ``torch.use_deterministic_algorithms(True)`` (restored after the
  run), the seeded sampler, no dataloader workers, no dropout, and the CPU kernels pinned at
  AVX2 with MKL in its thread-count-independent mode (stages/lib/numerics.py). Runs write
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
order, the seeds, the recipe and the package versions in run_config.json. A GPU backend started
as one process keeps one GPU (:func:`pin_one_device`), and every run checks the Trainer's own
total batch against the global batch before its first step (:func:`check_global_batch`).
The tokenizer is ``models/base/tokenizer.json`` run by its own pipeline (stages/lib/loading.py).

Checkpoints and resuming (``train.save_steps``; null = none). Every ``save_steps`` optimizer
steps the Trainer writes a full checkpoint (adapter, optimizer, scheduler, RNG states, the
trainer state with the log history so far) to ``logs/checkpoints/<run id>/<fingerprint>/``:
scratch space, never a DVC output (DVC deletes a stage's outputs before it reruns it). The
fingerprint is the sha256 of everything that decides the bytes: the run, the train params
(all but ``save_steps``), the base's identity, the dataset's sha256, the python and package
versions. A rerun of a killed run resumes from the newest complete checkpoint of the same
fingerprint (the Trainer's ``resume_from_checkpoint``: it restores the weights, AdamW moments,
the schedule, the python/numpy/torch RNG states and skips the batches already seen in the
seeded data order; the running loss sum behind ``train_loss``, which the Trainer resets on a
resume, is restored by :func:`loss_total_callback`) and deletes checkpoints of any other fingerprint, so a checkpoint of other
params or data is never resumed. After success the run's checkpoints are removed. On CPU
(``peft-cpu``) the resumed run writes the same ``adapter_model.safetensors`` and
``training_metrics.json`` bytes as an uninterrupted one (tests/test_train.py kills a run in a
subprocess after a checkpoint and compares). ``save_steps`` must be a multiple of
``logging_steps``: the loss accumulated since the last log is not in a checkpoint. Whether
the run resumed, and from which step, goes to the uncached ``logs/train-<run id>.json`` only.
On a GPU a resumed run is as (in)exact as any GPU run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stages.lib.errors import StageError, exit_stage
from stages.lib.params import UNPINNED, Base, ParamsError, Run, Train, load_params
from stages.lib.fingerprint import code_fingerprint
from stages.lib.loading import load_causal_lm, load_tokenizer, nf4_config
from stages.lib.numerics import cpu_numerics
from stages.lib.paths import adapter_folder
from stages.lib.progress import progress_enabled, stage_logger
from stages.lib.provenance import content_provenance, file_sha256, write_json, write_provenance
from stages.lib.tables import read_rows, split_path
from stages.lib.train_log import loss_curve_callback


# the distributions whose versions decide an adapter's bytes. bitsandbytes and Unsloth only on the
# backends that load them: recorded elsewhere, a plain install (no dev or gpu extra) and a dev install
# would write different run_config.json bytes for the same adapter.
TRAIN_PACKAGES = ("accelerate", "datasets", "peft", "safetensors", "tokenizers", "torch", "transformers", "trl")
BACKEND_PACKAGES = {"peft-cpu": (), "peft-bnb": ("bitsandbytes",), "unsloth": ("bitsandbytes", "unsloth", "unsloth_zoo")}


def train_packages(backend: str) -> tuple[str, ...]:
    return tuple(sorted(TRAIN_PACKAGES + BACKEND_PACKAGES[backend]))


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# keys of trainer metrics and log entries that measure time or speed, never content
WALL_CLOCK_KEY = re.compile(r"(runtime|per_second|_time$|^time|timestamp|_seconds$|^wall)", re.IGNORECASE)


class TrainError(StageError, ValueError):
    """A run that cannot be trained as asked; the message says what is missing."""


# --------------------------------------------------------------------------- arithmetic


def planned_steps(rows: int, train: Train) -> int:
    """Optimizer steps: ceil(rows / global batch) per epoch, as ``torchrun --nproc_per_node=2`` ran it.

    The Trainer counts ceil(micro-batches per process / accumulation) per epoch, where each of
    the ``processes`` ranks gets ceil(ceil(rows / per_device) / processes) micro-batches: the same number.
    """
    if rows <= 0:
        raise TrainError("the training split has no rows")
    micro_batches = math.ceil(math.ceil(rows / train.per_device_train_batch_size) / train.processes)
    per_epoch = math.ceil(micro_batches / train.gradient_accumulation_steps)
    steps = per_epoch * train.num_train_epochs
    return min(steps, train.max_steps) if train.max_steps is not None else steps


def warmup_steps(steps: int, ratio: float) -> int:
    """ceil(ratio x steps): 15 for the original's 282 steps at ratio 0.05."""
    return math.ceil(ratio * steps)


def strip_wall_clock(record: dict) -> tuple[dict, dict]:
    """(content, timing): the keys that measure time or speed moved out of ``record``."""
    content = {k: v for k, v in record.items() if not WALL_CLOCK_KEY.search(k)}
    timing = {k: v for k, v in record.items() if WALL_CLOCK_KEY.search(k)}
    return content, timing


# --------------------------------------------------------------------------- checkpoints

# written last (after the Trainer's own files): its presence marks a complete checkpoint
LOSS_TOTAL_FILE = "loss_total.json"
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors", LOSS_TOTAL_FILE)


def checkpoint_fingerprint(resolved: dict) -> str:
    """sha256 of what decides the bytes (run, params but save_steps, base, dataset, versions, the CPU
    numerics: a checkpoint made under other kernels is not resumed, and the code: stage module and its
    project imports, stages.lib.fingerprint). Checkpoints are no DVC output, so no output holds it."""
    train = {k: v for k, v in resolved["train"].items() if k != "save_steps"}
    content = {**content_provenance("train", {**resolved, "train": train}, packages=train_packages(train["backend"])),
               "cpu_numerics": cpu_numerics(),
               "code": code_fingerprint("stages.train", train_packages(train["backend"]))}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


def checkpoint_dir(root: Path, run_id: str, fingerprint: str) -> Path:
    """``root/<run_id>/<fingerprint[:16]>``; checkpoints of any other fingerprint are deleted (by rank 0)."""
    run_root = root / run_id
    folder = run_root / fingerprint[:16]
    if run_root.is_dir() and distributed_rank()[0] == 0:
        for stale in run_root.iterdir():
            if stale != folder:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def last_checkpoint(folder: Path, processes: int = 1) -> Path | None:
    """The newest ``checkpoint-<step>`` with every file a resume reads (a kill mid-save leaves one without).

    Under DDP every rank saves its own ``rng_state_<rank>.pth``; one process saves ``rng_state.pth``.
    """
    rng_files = ["rng_state.pth"] if processes == 1 else [f"rng_state_{rank}.pth" for rank in range(processes)]
    found = []
    for path in folder.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        has_rng = all((path / name).is_file() for name in rng_files)
        if step.isdigit() and has_rng and all((path / name).is_file() for name in CHECKPOINT_FILES):
            found.append((int(step), path))
    return max(found)[1] if found else None


def loss_total_callback(resume_from: Path | None):
    """Carries the Trainer's running loss sum across a resume, so ``train_loss`` comes out the same.

    transformers 5.17 resets ``Trainer._total_loss_scalar`` (the sum behind the final
    ``train_loss``) to 0 when it resumes: a resumed run would report the mean of the steps after
    the resume over all steps. The sum is written into each checkpoint and restored at
    ``on_train_begin``, which the Trainer calls right after that reset. ``save_steps`` is a
    multiple of ``logging_steps``, so at a save the sum holds every step so far. Private
    attribute of the pinned transformers: tests/test_train.py's resume test fails if it moves.
    """
    from transformers import TrainerCallback

    class LossTotal(TrainerCallback):
        trainer = None  # set once the Trainer exists

        def on_train_begin(self, args, state, control, **kwargs):
            if resume_from is not None:
                saved = json.loads((resume_from / LOSS_TOTAL_FILE).read_text(encoding="utf-8"))
                self.trainer._total_loss_scalar = saved["total_loss_scalar"]

        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            total = {"global_step": state.global_step, "total_loss_scalar": self.trainer._total_loss_scalar}
            write_json(folder / LOSS_TOTAL_FILE, total)

    return LossTotal()


def trainer_class():
    """The transformers Trainer, with one fix for resuming DDP on CPU.

    transformers 5.17 loads a checkpoint's optimizer state with ``map_location=args.device``
    when there is more than one process; on CPU that device is ``cpu:<rank>``, which
    ``torch.load`` cannot restore to, so a resumed gloo run died. Everything else is the
    Trainer's own (tests/test_train.py resumes a killed 2-process run).
    """
    import torch
    from transformers import Trainer

    class CpuDdpResumingTrainer(Trainer):
        def _load_optimizer_and_scheduler(self, checkpoint):
            if checkpoint is None or self.args.world_size == 1 or self.args.device.type != "cpu":
                return super()._load_optimizer_and_scheduler(checkpoint)
            folder = Path(checkpoint)
            self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
            self.lr_scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))

    return CpuDdpResumingTrainer


# --------------------------------------------------------------------------- data


def train_split(data_dir: Path, dataset: str) -> Path:
    path = split_path(data_dir / dataset, "train")
    if not path.is_file():
        raise TrainError(f"no training split at {path}: build it first (`dvc repro package@{dataset}`)")
    return path


def tokenize(codes: list[str], tokenizer, max_seq_length: int) -> dict[str, list[list[int]]]:
    """Each file one example: truncated to max_seq_length tokens, default special tokens, no padding."""
    encoded = tokenizer(codes, truncation=True, max_length=max_seq_length, padding=False, verbose=False)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


# --------------------------------------------------------------------------- backends


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


def base_source(base: Base, base_dir: Path) -> tuple[str, dict]:
    """Where the base weights come from: (from_pretrained argument, kwargs)."""
    if base.kind == "tiny":
        return str(base_dir), {}
    if base.revision == UNPINNED:
        raise TrainError(f"base.revision: still {UNPINNED!r}; set the commit of {base.repo} to train on")
    return base.repo, {"revision": base.revision}


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


# --------------------------------------------------------------------------- processes


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process as torchrun set them; (0, 1) when started plainly."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def check_world(train: Train) -> None:
    world = distributed_rank()[1]
    if world != train.processes:
        raise TrainError(
            f"train.processes is {train.processes} but this is one of {world} processes "
            "(torchrun --nproc_per_node); set train.processes, and start the stage as `python -m stages.train`, "
            "which launches torchrun itself"
        )


def _leave_process_group() -> None:
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def torchrun_command(processes: int, argv: list[str]) -> list[str]:
    """``python -m stages.train ...`` re-launched as ``torchrun --standalone --nproc_per_node=N -m stages.train ...``."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "stages.train", *argv,
    ]


# --------------------------------------------------------------------------- training


def pin_one_device(train: Train, env=os.environ) -> str | None:
    """One GPU per process, set before torch sees CUDA; returns the device kept (None: nothing changed).

    With one process and several visible GPUs, transformers sets ``n_gpu`` to all of them and multiplies
    the batch by it (``TrainingArguments.train_batch_size``) while a quantised model stays on one GPU:
    the run did 141 of 282 steps with batch 8 x n_gpu. So a GPU backend started without torchrun keeps
    only the first visible GPU; under torchrun (``LOCAL_RANK``) every rank already has one device.
    """
    if train.backend == "peft-cpu" or train.processes > 1 or "LOCAL_RANK" in env:  # torchrun: a device per rank
        return None
    visible = [device.strip() for device in env.get("CUDA_VISIBLE_DEVICES", "0").split(",") if device.strip()]
    if not visible:  # CUDA_VISIBLE_DEVICES="": no GPU at all
        return None
    env["CUDA_VISIBLE_DEVICES"] = visible[0]
    return visible[0]


def check_global_batch(trainer, train: Train) -> None:
    """Before training: the Trainer's own total batch must be the recipe's global batch (16), else refuse."""
    total = trainer.get_total_train_batch_size(trainer.args)
    if total != train.global_batch_size:
        raise TrainError(
            f"the Trainer would train with a global batch of {total} (per-device {trainer.args.train_batch_size} with "
            f"n_gpu {trainer.args.n_gpu}, accumulation {trainer.args.gradient_accumulation_steps}, "
            f"{trainer.args.world_size} processes), not per_device_train_batch_size x world_size = "
            f"{train.global_batch_size}: give this process one GPU (CUDA_VISIBLE_DEVICES) or set train.processes "
            "to the GPU count; nothing was trained"
        )




def training_arguments(train: Train, seed: int, steps: int, work_dir: Path):
    from transformers import TrainingArguments

    saving = {"save_strategy": "no"}
    if train.save_steps is not None:
        # two kept: a kill during a save leaves the previous checkpoint complete
        saving = {"save_strategy": "steps", "save_steps": train.save_steps, "save_total_limit": 2}
    distributed = {}
    if train.processes > 1:
        # gloo on CPU; NCCL (the default) on GPUs. Every LoRA matrix gets a gradient each step.
        distributed = {"ddp_find_unused_parameters": False}
        if train.backend == "peft-cpu":
            distributed["ddp_backend"] = "gloo"

    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=train.per_device_train_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate,
        num_train_epochs=train.num_train_epochs,
        max_steps=train.max_steps if train.max_steps is not None else -1,
        warmup_steps=warmup_steps(steps, train.warmup_ratio),
        lr_scheduler_type=train.lr_scheduler_type,
        max_grad_norm=train.max_grad_norm,
        optim=train.optim,
        weight_decay=train.weight_decay,
        fp16=train.fp16,
        bf16=False,
        logging_steps=train.logging_steps,
        logging_first_step=False,
        eval_strategy="no",
        **saving,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=train.backend == "peft-cpu",
        dataloader_num_workers=0,
        disable_tqdm=not progress_enabled(),  # bars in a terminal, none in CI and logs
        remove_unused_columns=False,
        **distributed,
    )


def train_run(
    run_id: str,
    run: Run,
    train: Train,
    base: Base,
    *,
    base_dir: Path = Path("models/base"),
    data_dir: Path = Path("data/packaged"),
    models_dir: Path = Path("models"),
    logs_dir: Path | None = Path("logs"),
    checkpoints_dir: Path | None = None,
    metrics_dir: Path | None = None,
    callbacks: tuple = (),
) -> Path:
    """Train one run's adapter into ``<models_dir>/<adapters_dir minus models/>/<run_id>/``; returns that folder.

    ``checkpoints_dir`` None keeps checkpoints (if ``save_steps`` asks for them) in a temporary
    folder: no resume. ``callbacks`` are extra ``TrainerCallback``s (the tests' kill switch).
    Under torchrun (``train.processes`` > 1) every rank trains its share of each global batch
    and only rank 0 writes; the other ranks return None.
    """
    check_world(train)  # one GPU per process: main() pins it (pin_one_device), check_global_batch verifies it
    if train.backend == "unsloth":
        import_unsloth()  # before transformers: Unsloth patches it on import and warns when it comes second
    rank = distributed_rank()[0]
    data_path = train_split(data_dir, run.dataset)
    if not (base_dir / "tokenizer.json").is_file() and not (base_dir / "tokenizer_config.json").is_file():
        raise TrainError(f"no tokenizer in {base_dir}: build it first (`dvc repro base`)")

    import torch
    from transformers import DataCollatorForLanguageModeling, set_seed
    from datasets import Dataset

    deterministic = torch.are_deterministic_algorithms_enabled()
    if train.backend == "peft-cpu":
        torch.use_deterministic_algorithms(True)  # restored below: a library call must not leak global state
    threads = torch.get_num_threads()
    try:
        tokenizer = load_tokenizer(base_dir)  # tokenizer.json's own pipeline (stages/lib/loading.py)
        if tokenizer.pad_token is None:  # the collator pads; padded positions are masked out of the loss
            tokenizer.pad_token = tokenizer.eos_token
        codes = [row["code"] for row in read_rows(data_path, ["code"])]
        features = tokenize(codes, tokenizer, train.max_seq_length)
        rows = len(codes)
        tokens = sum(len(ids) for ids in features["input_ids"])
        steps = planned_steps(rows, train)
        warmup = warmup_steps(steps, train.warmup_ratio)
        resolved = resolved_config(run_id, run, train, base, base_dir, data_path, steps, warmup)

        set_seed(run.seed)
        model = BACKENDS[train.backend](train, base, base_dir, run.seed)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

        dataset = Dataset.from_dict(features)
        collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)
        with tempfile.TemporaryDirectory(prefix=f"train-{run_id}-") as work:
            resume_from = None
            work_dir = Path(work)
            if train.save_steps is not None and checkpoints_dir is not None:
                work_dir = checkpoint_dir(checkpoints_dir, run_id, checkpoint_fingerprint(resolved))
                resume_from = last_checkpoint(work_dir, train.processes)
            loss_total = loss_total_callback(resume_from)
            if metrics_dir is not None:  # the loss curve, row by row as the steps are logged
                callbacks = (loss_curve_callback(metrics_dir / run_id / "loss.tsv"), *callbacks)
            trainer = trainer_class()(
                model=model,
                args=training_arguments(train, run.seed, steps, work_dir),
                train_dataset=dataset,
                data_collator=collator,
                callbacks=[loss_total, *callbacks],  # the loss sum first: a kill in on_save leaves it written
            )
            loss_total.trainer = trainer
            check_global_batch(trainer, train)
            started = time.time()
            result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            elapsed = time.time() - started
            log_history = list(trainer.state.log_history)
            global_step = trainer.state.global_step
        if global_step != steps:
            raise TrainError(f"trained {global_step} steps, planned {steps}")
        if rank != 0:
            return None

        out = adapter_folder(models_dir, train, run_id)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        model.save_pretrained(out, safe_serialization=True)
        for extra in sorted(out.iterdir()):  # PEFT's README.md model card: the card is MANIFEST.md's job
            if extra.name not in ADAPTER_FILES:
                extra.unlink() if extra.is_file() else shutil.rmtree(extra)
        missing = [name for name in ADAPTER_FILES if not (out / name).is_file()]
        if missing:
            raise TrainError(f"the backend wrote no {', '.join(missing)} in {out}")
        normalise_adapter_config(out / "adapter_config.json")
    finally:
        torch.use_deterministic_algorithms(deterministic)

    train_result, timing = strip_wall_clock(dict(result.metrics))
    history, history_timing = [], []
    for entry in log_history:
        content, clock = strip_wall_clock(entry)
        history.append(content)
        if clock:
            history_timing.append({"step": entry.get("step"), **clock})
    data = {
        "split": "train",
        "rows": rows,
        "tokens": tokens,
        "steps": steps,
        "warmup_steps": warmup,
        "per_device_train_batch_size": train.per_device_train_batch_size,
        "world_size": train.world_size,
        "processes": train.processes,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "global_batch_size": train.global_batch_size,
        "trainable_parameters": trainable,
    }
    write_json(
        out / "training_metrics.json",
        {
            "model_config_name": train.model_name,
            "condition_name": run.dataset,
            "seed": run.seed,
            "output_name": run_id,
            "train_result": train_result,
            "log_history": history,
            "data": data,
        },
    )
    record = content_provenance("train", resolved, packages=train_packages(resolved["train"]["backend"]))
    write_json(out / "run_config.json", record)
    write_provenance(out, "train", resolved)
    if metrics_dir is not None:
        write_json(metrics_dir / run_id / "summary.json", run_summary(run_id, out, models_dir, train_result, data))
    if train.save_steps is not None and checkpoints_dir is not None:
        shutil.rmtree(checkpoints_dir / run_id, ignore_errors=True)  # done: nothing left to resume
    if logs_dir is not None:
        write_json(
            logs_dir / f"train-{run_id}.json",
            {
                "run_id": run_id,
                "started_unix": started,
                "wall_seconds": elapsed,
                "resumed_from": resume_from.name if resume_from else None,
                "train_result_timing": timing,
                "log_history_timing": history_timing,
                "torch_threads": threads,
            },
        )
    return out


def run_summary(run_id: str, out: Path, models_dir: Path, train_result: dict, data: dict) -> dict:
    """A small per-run record beside the loss curve: the adapter's hashes and the headline numbers.

    ``metrics/train`` is what the manifest stage depends on: a dependency on the adapters'
    parent folder would hold the manifest itself in Phase 2's flat layout (models/<run>/).
    """
    return {
        "run_id": run_id,
        "path": out.relative_to(models_dir).as_posix(),
        "adapter_model_sha256": file_sha256(out / "adapter_model.safetensors"),
        "adapter_config_sha256": file_sha256(out / "adapter_config.json"),
        "train_loss": train_result.get("train_loss"),
        "steps": data["steps"],
        "rows": data["rows"],
        "tokens": data["tokens"],
    }


def resolved_config(
    run_id: str, run: Run, train: Train, base: Base, base_dir: Path, data_path: Path, steps: int, warmup: int
) -> dict:
    """What run_config.json records, and what the checkpoint fingerprint hashes."""
    return {
        "run_id": run_id,
        "run": run.model_dump(mode="json"),
        "seed": run.seed,
        "train": train.model_dump(mode="json"),
        "derived": {
            "global_batch_size": train.global_batch_size,
            "gradient_accumulation_steps": train.gradient_accumulation_steps,
            "steps": steps,
            "warmup_steps": warmup,
        },
        "base": base_identity(base, base_dir),
        "dataset": {"name": run.dataset, "split": "train", "path": data_path.as_posix(), "sha256": file_sha256(data_path)},
    }


def normalise_adapter_config(path: Path) -> None:
    """PEFT keeps target_modules as a set and writes it in set order, which follows the
    process's string-hash seed (PYTHONHASHSEED): two processes write different bytes.
    Rewritten with sorted lists and sorted keys; PEFT reads it back unchanged in meaning."""
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("target_modules", "modules_to_save", "exclude_modules"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    write_json(path, config)


def base_identity(base: Base, base_dir: Path) -> dict:
    """What decides the base: the sha256 of the tiny model's files, or the Hub repo at its revision."""
    identity: dict[str, Any] = {"kind": base.kind}
    if base.kind == "tiny":
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            path = base_dir / name
            identity[f"{name}_sha256"] = file_sha256(path) if path.is_file() else None
    else:
        identity.update(repo=base.repo, revision=base.revision)
        path = base_dir / "tokenizer.json"
        identity["tokenizer.json_sha256"] = file_sha256(path) if path.is_file() else None
    return identity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run id of params.yaml's runs")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--base", default="models/base", help="the base stage's folder (tokenizer; smoke: the model)")
    parser.add_argument("--data", default="data/packaged", help="the packaged datasets")
    parser.add_argument("--models", default="models", help="the models/ folder; adapters go to train.adapters_dir/<run>/")
    parser.add_argument("--logs", default="logs", help="the uncached timing log and logs/checkpoints/<run>/ go here")
    parser.add_argument("--metrics", default="metrics/train", help="the loss curve goes to <metrics>/<run>/loss.tsv")
    args = parser.parse_args(argv)
    log = stage_logger(f"train@{args.run}")
    try:
        params = load_params(args.params)
        if args.run not in params.runs:
            raise TrainError(f"no run {args.run!r} in {args.params} (runs: {', '.join(sorted(params.runs))})")
        pin_one_device(params.train)  # before torch sees CUDA
        if params.train.processes > 1 and "LOCAL_RANK" not in os.environ:
            # the same stage command at any world size: torchrun starts train.processes copies of it
            return subprocess.call(torchrun_command(params.train.processes, sys.argv[1:] if argv is None else argv))
        started = time.time()
        out = train_run(
            args.run,
            params.runs[args.run],
            params.train,
            params.base,
            base_dir=Path(args.base),
            data_dir=Path(args.data),
            models_dir=Path(args.models),
            logs_dir=Path(args.logs),
            checkpoints_dir=Path(args.logs) / "checkpoints",
            metrics_dir=Path(args.metrics),
        )
    except (TrainError, ParamsError, OSError) as error:
        log.error("%s", error)
        return 2
    finally:
        _leave_process_group()
    if out is None:  # a rank other than 0: rank 0 reports
        return 0
    metrics = json.loads((out / "training_metrics.json").read_text(encoding="utf-8"))
    log.info(
        f"{metrics['data']['rows']} rows, {metrics['data']['steps']} steps, "
        f"loss {metrics['train_result'].get('train_loss', float('nan')):.4f} -> {out} ({time.time() - started:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    exit_stage(main)
