"""The optimisation loop Stage B and the direct fine-tuning baseline share, so that the two
compare at the same data, steps, batch and schedule: LoRA on the frozen decoder, AdamW
parameter groups, linear warmup then linear decay to 0, gradient accumulation, clipping, and a
sequential pointer over the (already shuffled) train rows with wraparound, as the original."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from stages.lib.progress import progress
from stages.lib.provenance import write_json


def attach_lora(decoder, lora, seed: int):
    """LoRA deltas on the frozen decoder (the original: r 16, alpha 16, dropout 0.05, q/k/v/o/up/down)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none",
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(decoder, config)


PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def save_lora(model, folder: Path) -> None:
    """The PEFT adapter files only (PEFT's README model card dropped). PEFT writes target_modules
    in set order, which follows PYTHONHASHSEED; sorted, two processes write the same bytes."""
    model.save_pretrained(folder, safe_serialization=True)
    for extra in sorted(folder.iterdir()):
        if extra.name not in PEFT_FILES:
            extra.unlink()
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["target_modules"] = sorted(config["target_modules"])
    write_json(config_path, config)


def lora_parameters(model) -> list[torch.nn.Parameter]:
    return [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]


def linear_schedule(step: int, warmup: int, total: int) -> float:
    """The multiplier of ``get_linear_schedule_with_warmup``."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def optimise(groups: list[dict], steps: int, micro_batch: int, grad_accum: int, warmup_frac: float, clip: float,
             n_rows: int, step_loss: Callable[[torch.Tensor, int], tuple[torch.Tensor, dict]],
             desc: str = "optimise") -> list[dict]:
    """Run ``steps`` optimizer steps; ``step_loss(row indices, step)`` returns a micro-batch's loss
    and the numbers to log. Returns one history row per step (micro-batch means). ``desc`` names
    the progress bar (a terminal only, stages/lib/progress.py)."""
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    warmup = int(warmup_frac * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, warmup, steps))
    pointer, history = 0, []
    for step in progress(range(steps), desc=desc, unit="step"):
        logs: dict[str, float] = {}
        for _ in range(grad_accum):
            idx = (torch.arange(micro_batch) + pointer) % n_rows
            pointer = (pointer + micro_batch) % n_rows
            loss, numbers = step_loss(idx, step)
            (loss / grad_accum).backward()
            for key, value in {"loss": loss.item(), **numbers}.items():
                logs[key] = logs.get(key, 0.0) + value / grad_accum
        torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        history.append({"step": step + 1, **logs})
    return history
