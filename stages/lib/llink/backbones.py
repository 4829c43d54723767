"""The frozen backbones: a multilingual encoder (masked-mean sentence vectors) and a decoder
(the teacher state at a reserved token, and the model Stage B adapts).

Smoke: tiny XLM-R and Llama models built from configs with a seed, with tokenizers trained
here by ``tokenizers`` (no randomness), saved with ``save_pretrained`` and loaded back with
``from_pretrained`` like a real checkpoint. Paper: ``xlm-roberta-base`` and
``Llama-3.2-1B-Instruct`` from the local Hugging Face cache at pinned revisions.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordLevel
from tokenizers.trainers import BpeTrainer

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
FOREIGN_OPEN, FOREIGN_CLOSE, FOREIGN_EMB = "<foreign>", "</foreign>", "<foreign_emb>"


def slot_tokens(k: int) -> list[str]:
    return [f"<f{i}>" for i in range(k)]


def reserved_tokens(k: int) -> list[str]:
    """The original's added tokens, in its order: the three of Stage A, then the K placeholders."""
    return [FOREIGN_OPEN, FOREIGN_CLOSE, FOREIGN_EMB, *slot_tokens(k)]


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic kernels and a fixed thread count, restored afterwards."""
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def quiet() -> None:
    """No progress bars from transformers' save/load in stage logs."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def _wrap(backend: Tokenizer, model_max_length: int, extra: Sequence[str] = ()):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=list(extra), model_max_length=model_max_length,
    )


def train_decoder_tokenizer(texts: Iterable[str], vocab_size: int, k: int, model_max_length: int = 1024):
    """Byte-level BPE trained on English text only, so foreign script stays at byte level (the
    paper's tokenizer inflation); digits split one by one; BOS prepended."""
    backend = Tokenizer(BPE(fuse_unk=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    backend.decoder = decoders.ByteLevel()
    specials = [PAD, BOS, EOS, UNK, *reserved_tokens(k)]
    trainer = BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, backend.token_to_id(BOS))]
    )
    return _wrap(backend, model_max_length, reserved_tokens(k))


def train_encoder_tokenizer(texts: Iterable[str], model_max_length: int = 512):
    """Character-level, XLM-R's special-token layout (<s>=0, <pad>=1, </s>=2, <unk>=3)."""
    chars = sorted({c for text in texts for c in text})
    vocab = {tok: i for i, tok in enumerate(["<s>", PAD, "</s>", UNK, *chars])}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return _wrap(backend, model_max_length)


def build_tiny_decoder(cfg, tokenizer, seed: int):
    """A random-initialised Llama (GQA, tied embeddings). ``initializer_range`` ~0.1: with 0.02 a
    frozen tied head cannot sharpen its logits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_positions, initializer_range=cfg.initializer_range, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(torch.float32).eval()


def build_tiny_encoder(cfg, tokenizer, seed: int):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, max_position_embeddings=cfg.max_positions + 2,
        initializer_range=cfg.initializer_range, pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2,
    )
    torch.manual_seed(seed)
    return XLMRobertaModel(config, add_pooling_layer=False).to(torch.float32).eval()


def load_decoder(where: str, revision: str | None = None):
    """The frozen decoder and its tokenizer, through the one path real checkpoints take."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet()
    model = AutoModelForCausalLM.from_pretrained(
        where, revision=revision, trust_remote_code=False, use_safetensors=True, dtype=torch.float32
    )
    for param in model.parameters():
        param.requires_grad_(False)
    model = model.to(torch.get_default_device())  # llink.device (stages/lib/llink/run.py); a no-op on CPU
    return model.eval(), AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=False)


def load_encoder(where: str, revision: str | None = None):
    from transformers import AutoModel, AutoTokenizer

    quiet()
    model = AutoModel.from_pretrained(
        where, revision=revision, trust_remote_code=False, use_safetensors=True, dtype=torch.float32,
        add_pooling_layer=False,
    )
    for param in model.parameters():
        param.requires_grad_(False)
    model = model.to(torch.get_default_device())  # llink.device (stages/lib/llink/run.py); a no-op on CPU
    return model.eval(), AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=False)


def load_frozen_decoder(kind: str, repo: str, revision: str | None, folder: Path, rows: dict[str, torch.Tensor]):
    """The decoder every stage after llink_features uses: the tiny model from ``folder``, or the
    pinned checkpoint grown to the tokenizer saved in ``folder``; the reserved rows restored."""
    from transformers import AutoTokenizer

    if kind == "tiny":
        model, tokenizer = load_decoder(str(folder))
    else:
        model, _ = load_decoder(repo, revision)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    restore_rows(model, tokenizer, rows)
    return model, tokenizer


def add_reserved_tokens(model, tokenizer, k: int, seed: int) -> None:
    """Paper scale: add the 3+K tokens to a real tokenizer and grow the (tied) embeddings; the new
    rows are drawn under ``seed`` and then snapshotted, so every stage sees the same rows."""
    missing = [t for t in reserved_tokens(k) if t not in tokenizer.get_vocab()]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not missing:
        return
    tokenizer.add_special_tokens({"additional_special_tokens": missing})
    torch.manual_seed(seed)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    std = getattr(model.config, "initializer_range", 0.02)
    rows = model.get_input_embeddings().weight
    with torch.no_grad():
        for token in missing:
            rows[tokenizer.convert_tokens_to_ids(token)].normal_(0.0, std)


def snapshot_rows(model, tokenizer, k: int) -> dict[str, torch.Tensor]:
    """All 3+K reserved input-embedding rows (the original snapshotted only 3)."""
    weight = model.get_input_embeddings().weight
    return {t: weight[tokenizer.convert_tokens_to_ids(t)].detach().clone() for t in reserved_tokens(k)}


def restore_rows(model, tokenizer, rows: dict[str, torch.Tensor]) -> None:
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for token, row in rows.items():
            weight[tokenizer.convert_tokens_to_ids(token)] = row


@torch.no_grad()
def encoder_vectors(encoder, tokenizer, texts: Sequence[str], max_chars: int, max_tokens: int, batch_size: int) -> torch.Tensor:
    """Masked mean of the last layer over the foreign text (clipped to ``max_chars`` characters)."""
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = [t[:max_chars] for t in texts[start : start + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))
    return torch.cat(out)


@torch.no_grad()
def reserved_states(decoder, tokenizer, texts: Sequence[str], max_src_tokens: int, batch_size: int) -> torch.Tensor:
    """The teacher target: the decoder's last-layer (post-norm) state at ``<foreign_emb>`` appended after
    BOS + the text, left-padded, no template (the original's ``teacher_inputs_with_emb``)."""
    emb_id = tokenizer.convert_tokens_to_ids(FOREIGN_EMB)
    pad = tokenizer.pad_token_id
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [tokenizer(t, add_special_tokens=True)["input_ids"][: max_src_tokens - 1] + [emb_id]
                for t in texts[start : start + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        hidden = decoder.model(input_ids=ids, attention_mask=mask).last_hidden_state
        out.append(hidden[:, -1])
    return torch.cat(out)


def count_tokens(tokenizer, texts: Sequence[str]) -> float:
    """Mean decoder tokens per text, without special tokens (the token budget)."""
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts) / max(len(texts), 1)


def save_backbone(model, tokenizer, folder: Path) -> None:
    quiet()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
