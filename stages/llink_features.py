"""llink_features: the frozen backbones and the features cached from them.

    python -m stages.llink_features [--params params.yaml]      # dvc.yaml: llink_features

Both backbones are frozen and run in eval mode, so their outputs can be computed once and
cached exactly (the original recomputed them for every one of 2.56 M pair-visits).
Tiny (smoke): a byte-level BPE trained on the English train side (foreign script stays at
byte level: the paper's token inflation) and a character tokenizer for the encoder; a tiny
Llama and a tiny XLM-R built under ``llink.backbones.seed``; saved with ``save_pretrained``
and loaded back with ``from_pretrained`` like the paper's checkpoints. Pretrained (paper):
``repo`` at ``revision`` from the local Hugging Face cache, with the 3+K reserved tokens added.

Reads data/llink/pairs/{train,dev}.jsonl. Writes models/llink/backbones/{encoder,decoder}/
(tiny: weights and tokenizer; pretrained: the decoder's tokenizer with the added tokens),
data/llink/features/features.safetensors (enc_*, teacher_*, native_dev),
data/llink/features/special_rows.safetensors (all 3+K reserved rows) and provenance.json;
metrics/llink/features.json (token budget, teacher diversity).
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from stages.lib.errors import exit_stage
from stages.lib.llink import backbones as bb
from stages.lib.llink.data import read_pairs
from stages.lib.llink.metrics import diversity, rounded
from stages.lib.llink.prompt import INSTRUCTION, SUFFIX, DRIFT_INSTRUCTION
from stages.lib.llink.run import main_of, provenance, stamp, write_json
from stages.lib.params import UNPINNED, Llink

PAIRS = Path("data/llink/pairs")
MODELS = Path("models/llink/backbones")
OUT = Path("data/llink/features")
METRICS = Path("metrics/llink/features.json")


def decoder_source(llink: Llink, models: Path) -> tuple[str, str | None]:
    """Where the frozen decoder is loaded from: the tiny folder, or the pinned Hub repo."""
    spec = llink.backbones.decoder
    if llink.backbones.kind == "tiny":
        return str(models / "decoder"), None
    return spec.repo, spec.revision


def build_tiny(llink: Llink, train_english: list[str], all_foreign: list[str], models: Path) -> None:
    """Train the tokenizers, build the tiny models under the seed and save them."""
    backbones = llink.backbones
    prompts = [INSTRUCTION, SUFFIX, DRIFT_INSTRUCTION, "User: Instruction: Foreign: Assistant:"]
    dec_tok = bb.train_decoder_tokenizer(
        [*train_english, *prompts * 10], backbones.decoder.vocab_size, llink.k_slots, backbones.decoder.max_positions
    )
    enc_tok = bb.train_encoder_tokenizer(all_foreign, backbones.encoder.max_positions)
    bb.save_backbone(bb.build_tiny_decoder(backbones.decoder, dec_tok, backbones.seed), dec_tok, models / "decoder")
    bb.save_backbone(bb.build_tiny_encoder(backbones.encoder, enc_tok, backbones.seed + 1), enc_tok, models / "encoder")


def load_backbones(llink: Llink, models: Path):
    """(encoder, encoder tokenizer, decoder, decoder tokenizer), reserved tokens present."""
    backbones = llink.backbones
    if backbones.kind == "pretrained":
        for spec in (backbones.encoder, backbones.decoder):
            if spec.revision == UNPINNED:
                raise ValueError(f"llink.backbones: {spec.repo} revision is still {UNPINNED!r}; pin a commit")
        encoder, enc_tok = bb.load_encoder(backbones.encoder.repo, backbones.encoder.revision)
    else:
        encoder, enc_tok = bb.load_encoder(str(models / "encoder"))
    decoder, dec_tok = bb.load_decoder(*decoder_source(llink, models))
    if backbones.kind == "pretrained":
        bb.add_reserved_tokens(decoder, dec_tok, llink.k_slots, backbones.seed)
        dec_tok.save_pretrained(models / "decoder")
    return encoder, enc_tok, decoder, dec_tok


def run(llink: Llink, pairs_dir: Path = PAIRS, models: Path = MODELS, out: Path = OUT, metrics: Path = METRICS) -> dict:
    train, dev = read_pairs(pairs_dir / "train.jsonl"), read_pairs(pairs_dir / "dev.jsonl")
    backbones = llink.backbones
    with bb.deterministic(backbones.seed, llink.threads):
        if backbones.kind == "tiny":
            build_tiny(llink, [p.english for p in train], [p.foreign for p in train + dev], models)
        encoder, enc_tok, decoder, dec_tok = load_backbones(llink, models)
        enc = lambda pairs: bb.encoder_vectors(  # noqa: E731
            encoder, enc_tok, [p.foreign for p in pairs], llink.data.max_foreign_chars, backbones.max_foreign_tokens,
            backbones.batch_size,
        )
        teacher = lambda texts: bb.reserved_states(decoder, dec_tok, texts, backbones.max_src_tokens, backbones.batch_size)  # noqa: E731
        features = {
            "enc_train": enc(train),
            "enc_dev": enc(dev),
            "teacher_train": teacher([p.english for p in train]),
            "teacher_dev": teacher([p.english for p in dev]),
            # the native baseline: the decoder reading the foreign text itself
            "native_dev": teacher([p.foreign for p in dev]),
        }
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in features.items()}, out / "features.safetensors")
    rows = bb.snapshot_rows(decoder, dec_tok, llink.k_slots)
    save_file({k: v.contiguous() for k, v in rows.items()}, out / "special_rows.safetensors")
    stamp(out, "llink_features", {"backbones": backbones, "k_slots": llink.k_slots, "data": llink.data})
    english = bb.count_tokens(dec_tok, [p.english for p in dev])
    foreign = bb.count_tokens(dec_tok, [p.foreign for p in dev])
    summary = {
        "decoder_vocab": len(dec_tok),
        "encoder_vocab": len(enc_tok),
        "d_enc": features["enc_train"].shape[1],
        "d_dec": features["teacher_train"].shape[1],
        "token_budget": {"english_tokens": english, "foreign_tokens": foreign, "inflation": foreign / english,
                         "k_slots": llink.k_slots},
        "teacher_diversity": diversity(features["teacher_dev"]),
    }
    write_json(metrics, rounded({**summary, "provenance": provenance("llink_features", backbones)}))
    return {"inflation": round(foreign / english, 2), "teacher_mean_cos": round(summary["teacher_diversity"]["mean_pairwise_cos"], 3)}


main = main_of("llink_features", run)

if __name__ == "__main__":
    exit_stage(main)
