"""Stage B's prompt, tokenization, label mask and slot positions: one ``build_prompt`` for training
and inference (the original's prompts drifted; ``drift`` keeps that as an ablation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from stages.lib.llink.backbones import FOREIGN_CLOSE, FOREIGN_OPEN, slot_tokens

INSTRUCTION = "Translate the foreign text to English."
SUFFIX = "Answer in English only."
# the original's inference prompt (I/pipeline.py), used at evaluation only under prompt: drift
DRIFT_INSTRUCTION = "English translation (one short sentence):"


def build_prompt(foreign: str, style: str = "shared") -> str:
    """``foreign``: the slot placeholders (LLINK) or the raw foreign text (direct fine-tuning)."""
    body = f"Instruction: {INSTRUCTION}\nForeign: {FOREIGN_OPEN}{foreign}{FOREIGN_CLOSE}\n{SUFFIX}"
    if style == "shared":
        return body
    if style == "drift_infer":
        return f"User: Instruction: {DRIFT_INSTRUCTION}\nForeign: {FOREIGN_OPEN}{foreign}{FOREIGN_CLOSE}\n{SUFFIX}\nAssistant:"
    raise ValueError(f"prompt style {style!r}")


def slot_text(k: int) -> str:
    return " ".join(slot_tokens(k))


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    labels: list[int]
    slot_positions: list[int]
    target_ids: list[int]


def encode(tokenizer, prompt: str, target: str, label_mask: str, k: int, max_len: int) -> Encoded:
    """``target``: labels on the target tokens + EOS exactly. ``half``: the original's fallback when it
    found no "Assistant:" (always): the first half of the sequence masked, no EOS."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    target_ids = tokenizer(" " + target, add_special_tokens=False)["input_ids"] if target else []
    return assemble(tokenizer, prompt_ids, target_ids, label_mask, k, max_len)


def encode_many(tokenizer, prompts: Sequence[str], targets: Sequence[str], label_mask: str, k: int, max_len: int) -> list[Encoded]:
    """:func:`encode` over many rows with two batched tokenizer calls (a fixed prompt is tokenized once)."""
    unique = list(dict.fromkeys(prompts))
    prompt_ids = dict(zip(unique, tokenizer(unique, add_special_tokens=True)["input_ids"]))
    target_ids = tokenizer([" " + t for t in targets], add_special_tokens=False)["input_ids"]
    return [assemble(tokenizer, prompt_ids[p], t, label_mask, k, max_len) for p, t in zip(prompts, target_ids)]


def assemble(tokenizer, prompt_ids: list[int], target_ids: list[int], label_mask: str, k: int, max_len: int) -> Encoded:
    if label_mask == "target":
        ids = prompt_ids + target_ids + [tokenizer.eos_token_id]
        labels = [-100] * len(prompt_ids) + target_ids + [tokenizer.eos_token_id]
    elif label_mask == "half":
        ids = prompt_ids + target_ids
        labels = [-100] * (len(ids) // 2) + ids[len(ids) // 2 :]
    elif label_mask == "none":  # a prompt for generation
        ids, labels = prompt_ids, [-100] * len(prompt_ids)
    else:
        raise ValueError(f"label_mask {label_mask!r}")
    ids, labels = ids[:max_len], labels[:max_len]
    positions = [ids.index(t) for t in tokenizer.convert_tokens_to_ids(slot_tokens(k)) if t in ids]
    if positions and len(positions) != k:
        raise ValueError(f"only {len(positions)} of {k} slots survive truncation to {max_len} tokens")
    return Encoded(ids, labels, positions, target_ids)


def collate(rows: Sequence[Encoded], pad_id: int, left: bool = False) -> dict[str, torch.Tensor]:
    """Pad to the longest row; ``left`` for generation of rows of different lengths."""
    width = max(len(r.ids) for r in rows)
    ids, labels, mask, positions = [], [], [], []
    for r in rows:
        pad = width - len(r.ids)
        if left:
            ids.append([pad_id] * pad + r.ids)
            labels.append([-100] * pad + r.labels)
            mask.append([0] * pad + [1] * len(r.ids))
            positions.append([p + pad for p in r.slot_positions])
        else:
            ids.append(r.ids + [pad_id] * pad)
            labels.append(r.labels + [-100] * pad)
            mask.append([1] * len(r.ids) + [0] * pad)
            positions.append(list(r.slot_positions))
    batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}
    if positions and positions[0]:
        batch["slot_positions"] = torch.tensor(positions)
    return batch
