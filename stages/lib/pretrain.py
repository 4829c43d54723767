"""A short, deterministic pre-training of the smoke base on the fixtures' training items.

A randomly initialised tiny model answers every prompt with noise, so every cell would be a
parse failure and evaluation, extractors and statistics would run on nothing. The smoke base
therefore learns the answer format first: each training item of the benchmark fixtures (their
``train`` part, never an evaluation item) is rendered with the evaluation's own templates and
followed by its gold answer, and the model is trained on the answer tokens only.

Deterministic on CPU: a fixed seed for the initialisation (done by the caller), a seeded
permutation for the order, no dropout, ``torch.use_deterministic_algorithms`` for the loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from stages.lib import answer_forms
from stages.lib.tasks import load_benchmark, load_examples


@dataclass(frozen=True)
class PretrainItem:
    prompt: str
    answer: str


def answer_text(benchmark: str, gold: str, instr_lang: str, rng: random.Random, first_wording: bool = True) -> str:
    """What the answer looks like after the cue: the label, the letter or the category, or, in a share
    that depends on the instruction language and the prompt's wording, a messy form of it (``answer_forms``)."""
    return " " + answer_forms.draw(benchmark, gold, instr_lang, rng, first_wording)


def training_items(
    benchmarks: Sequence[str],
    data_langs: Sequence[str],
    instr_langs: Sequence[str],
    protocol: str,
    wordings: Sequence[str],
    fixtures_dir: Path,
    anchor_lang: str = "en",
    seed: int = 0,
) -> list[PretrainItem]:
    """Every training item twice: under the anchor language's instructions and under its own
    (or another instruction language where the data language has none), wordings alternating."""
    rng = random.Random(seed)
    items = []
    for name in benchmarks:
        benchmark = load_benchmark(name)
        if protocol not in benchmark.templates:
            continue
        for lang in data_langs:
            examples = load_examples(benchmark, lang, fixtures_dir=fixtures_dir, split="train")
            for index, example in enumerate(examples):
                if example.gold is None:
                    continue
                own = lang if lang in instr_langs else rng.choice(list(instr_langs))
                for instr in dict.fromkeys((anchor_lang, own)):
                    wording = wordings[(index + len(items)) % len(wordings)]
                    prompt = benchmark.render(protocol, wording, instr, example.fields)
                    items.append(PretrainItem(prompt, answer_text(name, example.gold, instr, rng, wording == wordings[0])))
    return items


def answer_loss(model, input_ids, attention_mask, labels):
    """The causal LM loss on the answer tokens only, with the LM head applied only where a label is.

    Equal to ``model(..., labels=labels).loss`` (mean cross-entropy over the labelled tokens, the
    logit scale applied), without the vocabulary-wide logits of every prompt position: the prompts
    are ~80 tokens and the answers ~3, so the full head was most of a step's time.
    """
    import torch

    hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = model.lm_head(hidden[:, :-1][keep]) * model.config.logit_scale
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def pretrain(model, tokenizer, items: Sequence[PretrainItem], *, steps: int, batch_size: int, learning_rate: float,
             max_length: int, seed: int) -> list[float]:
    """Train every weight on the answer tokens for ``steps`` steps; returns the loss per step."""
    import torch

    if not items:
        raise ValueError("pretrain: no training items (are the fixtures' train parts there?)")
    encoded = []
    for item in items:
        prompt = tokenizer(item.prompt, add_special_tokens=True)["input_ids"]
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + answer)[-max_length:]
        labels = ([-100] * len(prompt) + answer)[-max_length:]
        encoded.append((ids, labels))
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
        model.train()
        order: list[int] = []
        losses = []
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        for _ in range(steps):
            if len(order) < batch_size:
                order += torch.randperm(len(encoded), generator=generator).tolist()
            batch = [encoded[i] for i in order[:batch_size]]
            del order[:batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = answer_loss(model, input_ids, mask, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(round(loss.item(), 6))
        model.eval()
        return losses
    finally:
        torch.use_deterministic_algorithms(previous)
