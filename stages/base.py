"""base: the smoke-scale base model, a tiny ``Cohere2ForCausalLM`` with its own tokenizer.

    python -m stages.base                   # dvc.yaml: base (reads the base section of params.yaml)
    python -m stages.base --out models/base/smoke \\
        --datasets condition-1-en-5k condition-2-zh-5k condition-2-es-5k condition-2-ur-5k \\
        [--data data] [--seed 42] [--vocab-size 4096] [--config-json '{"hidden_size": 64}']

At paper scale the base is ``CohereLabs/tiny-aya-base`` from the Hugging Face cache. At
smoke scale this stage builds a model of the same architecture (``Cohere2Config``, a few
layers of width 64, the sliding/full attention pattern kept) initialised under a fixed
seed, and a byte-level BPE tokenizer with the Cohere pipeline (NFC, single digits,
byte-level) trained with ``tokenizers`` on the ``code`` column of the datasets' train
splits, read in the order given. Both are saved with ``save_pretrained`` (safetensors),
so ``AutoModelForCausalLM.from_pretrained`` and ``stages.lib.loading.load_tokenizer`` (the
file's own pipeline) load either base through one code path, with ``trust_remote_code=False``.
At paper scale this stage copies the repo's ``tokenizer.json`` and ``tokenizer_config.json`` byte for byte
out of the Hugging Face cache: re-saving them through ``AutoTokenizer`` (``CohereTokenizer`` in
transformers 5.17) would replace tiny-aya's pre-tokeniser, which groups digits in threes.

The same inputs write byte-identical files. BPE training in ``tokenizers`` has no
randomness: word counts are summed (the order of the parallel reduction does not change
a sum), the alphabet is sorted before ids are assigned, and merge ties are broken by
pair ids. The one hash-order dependence known upstream (huggingface/tokenizers#1794,
continuing-subword prefixes) is not used by byte-level BPE. So the result does not
depend on ``RAYON_NUM_THREADS`` (tests check 1 thread against several).

Reads ``<data>/<dataset>/train-00000-of-00001.parquet`` for each dataset; writes to
``--out``: ``config.json``, ``generation_config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json``, ``build.json`` (config, seed, vocab size,
datasets and their sha256, package versions) and ``provenance.json`` (git commit).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Iterable

import torch
from huggingface_hub.errors import StrictDataclassError
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import Cohere2Config, Cohere2ForCausalLM, PreTrainedTokenizerBase
from transformers.models.cohere.tokenization_cohere import CohereTokenizer

from stages.lib.errors import StageError, exit_stage
from stages.lib.tasks import BenchmarkError
from stages.lib.params import UNPINNED, Evaluate, ParamsError, Pretrain, load_params
from stages.lib.pretrain import pretrain as pretrain_model
from stages.lib.pretrain import training_items
from stages.lib.provenance import content_provenance, file_sha256, write_json, write_provenance
from stages.lib.tables import read_rows, split_path


# The packages whose versions decide the bytes of the base.
BASE_PACKAGES = ("safetensors", "tokenizers", "torch", "transformers")

# Cohere's special tokens, in the ids the Command/Aya vocabularies give them
# (pad 0 ... bos 5), then the end tokens. CohereTokenizer's defaults name them.
SPECIAL_TOKENS = (
    "<PAD>",
    "<UNK>",
    "<CLS>",
    "<SEP>",
    "<MASK_TOKEN>",
    "<BOS_TOKEN>",
    "<EOS_TOKEN>",
    "<|END_OF_TURN_TOKEN|>",
)
BOS_TOKEN = "<BOS_TOKEN>"
EOS_TOKEN = "<|END_OF_TURN_TOKEN|>"  # CohereTokenizer's default eos
PAD_TOKEN = "<PAD>"
# the special tokens CohereTokenizer has a named slot for; the rest are extra special tokens
NAMED_TOKENS = ("<PAD>", "<UNK>", "<CLS>", "<SEP>", "<MASK_TOKEN>", BOS_TOKEN, EOS_TOKEN)

# A tiny model of tiny-aya-base's architecture; --config-json overrides any key.
SMOKE_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "sliding_window": 256,
    "sliding_window_pattern": 4,
    "logit_scale": 0.0625,
    "tie_word_embeddings": True,
}


class BaseError(StageError, ValueError):
    pass


def cohere_pipeline() -> Tokenizer:
    """An untrained BPE tokenizer with CohereTokenizer's normaliser, pre-tokeniser and decoder."""
    tokenizer = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True)
    return tokenizer


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, seed: int | None = None, model_max_length: int = 2048
) -> CohereTokenizer:
    """A byte-level BPE trained on ``texts``, wrapped as the class tiny-aya-base loads as.

    ``seed`` is accepted for symmetry with :func:`build_model` and ignored: BPE training
    has no randomness (see the module docstring). The 256 byte symbols are always in
    the vocabulary, so any UTF-8 text round-trips.
    """
    del seed
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    minimum = len(SPECIAL_TOKENS) + len(alphabet)
    if vocab_size <= minimum:
        raise BaseError(f"vocab_size {vocab_size} leaves no merges: it must exceed {minimum}")
    backend = cohere_pipeline()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    model = json.loads(backend.to_str())["model"]
    # Rebuilt through CohereTokenizer, exactly as AutoTokenizer rebuilds it from tokenizer.json.
    return CohereTokenizer(
        vocab=model["vocab"],
        merges=[tuple(merge) for merge in model["merges"]],
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=model_max_length,
        extra_special_tokens=[token for token in SPECIAL_TOKENS if token not in NAMED_TOKENS],
    )


def model_config(config_kwargs: dict, vocab_size: int, tokenizer: PreTrainedTokenizerBase | None = None) -> Cohere2Config:
    kwargs = {**SMOKE_CONFIG, **config_kwargs}  # never Cohere2Config's own 8B-sized defaults
    layers = kwargs["num_hidden_layers"]
    if "layer_types" not in kwargs:
        # Cohere2's pattern (every fourth layer full attention), but with at least one
        # full-attention layer however few layers there are: the last one.
        pattern = kwargs.pop("sliding_window_pattern", 4)
        kwargs["layer_types"] = [
            "full_attention" if (i + 1) % pattern == 0 or i == layers - 1 else "sliding_attention" for i in range(layers)
        ]
    kwargs.pop("sliding_window_pattern", None)
    if tokenizer is not None:
        kwargs.update(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
        )
    else:
        ids = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        kwargs.update(bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN])
    config = Cohere2Config(vocab_size=vocab_size, **kwargs)
    if len(config.layer_types) != config.num_hidden_layers:
        raise BaseError(f"layer_types has {len(config.layer_types)} entries for {config.num_hidden_layers} layers")
    return config


def build_model(
    config_kwargs: dict, vocab_size: int, seed: int, tokenizer: PreTrainedTokenizerBase | None = None
) -> Cohere2ForCausalLM:
    """A randomly initialised Cohere2ForCausalLM, the same weights for the same seed, in float32.

    ``config_kwargs`` override :data:`SMOKE_CONFIG`; the special-token ids come from
    ``tokenizer`` when given, else from :data:`SPECIAL_TOKENS`' positions.
    """
    config = model_config(config_kwargs, vocab_size, tokenizer)
    torch.manual_seed(seed)
    model = Cohere2ForCausalLM(config).to(torch.float32)
    model.generation_config.pad_token_id = config.pad_token_id
    return model.eval()


def read_texts(data_dir: Path, datasets: list[str]) -> Iterable[str]:
    """The ``code`` column of each dataset's train split, in the order given, rows in file order."""
    for name in datasets:
        for row in read_rows(split_path(data_dir / name, "train"), ["code"]):
            yield row["code"]


def build(
    out: Path,
    data_dir: Path,
    datasets: list[str],
    seed: int,
    vocab_size: int,
    config_kwargs: dict,
    pretrain: Pretrain | None = None,
    evaluate: Evaluate | None = None,
) -> dict:
    """Train the tokenizer, build the model, optionally pre-train it on the benchmark fixtures'
    training items, save both to ``out``; returns build.json's record."""
    if not datasets:
        raise BaseError("no datasets to train the tokenizer on")
    if len(set(datasets)) != len(datasets):
        raise BaseError(f"a dataset is named twice: {datasets}")
    shas = {name: file_sha256(split_path(data_dir / name, "train")) for name in datasets}
    max_length = config_kwargs.get("max_position_embeddings", SMOKE_CONFIG["max_position_embeddings"])
    items = []
    if pretrain is not None:
        if evaluate is None:
            raise BaseError("base.pretrain needs the evaluate section (benchmarks, languages, templates)")
        items = training_items(
            evaluate.benchmarks, evaluate.data_langs, evaluate.instr_langs, evaluate.protocol, evaluate.templates,
            Path(evaluate.fixtures_dir), evaluate.anchor_lang, pretrain.seed,
        )
    # the fixtures' training prompts join the code, so that zh/es/ur prose gets tokens of its own
    texts = itertools.chain(read_texts(data_dir, datasets), (item.prompt + item.answer for item in items))
    tokenizer = train_tokenizer(texts, vocab_size, seed, max_length)
    model = build_model(config_kwargs, len(tokenizer), seed, tokenizer)
    losses = []
    if pretrain is not None:
        losses = pretrain_model(
            model, tokenizer, items, steps=pretrain.steps, batch_size=pretrain.batch_size,
            learning_rate=pretrain.learning_rate, max_length=pretrain.max_length, seed=pretrain.seed,
        )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    resolved = {
        "config": config_kwargs,
        "seed": seed,
        "vocab_size": len(tokenizer),
        "datasets": [{"name": name, "split": "train", "sha256": shas[name]} for name in datasets],
    }
    if pretrain is not None:
        resolved["pretrain"] = {
            **pretrain.model_dump(),
            "items": len(items),
            "benchmarks": list(evaluate.benchmarks),
            "fixtures": {str(p): file_sha256(p) for p in sorted(Path(evaluate.fixtures_dir).rglob("*")) if p.suffix in (".parquet", ".tsv")},
            "loss_first": losses[0],
            "loss_last": losses[-1],
        }
    record = content_provenance("base", resolved, {"model_config": model.config.to_diff_dict()}, BASE_PACKAGES)
    write_json(out / "build.json", record)
    return resolved


# the tokenizer files of a Hub base, copied byte for byte; the first two are required
HUB_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
REQUIRED_TOKENIZER_FILES = HUB_TOKENIZER_FILES[:2]


def save_hub_tokenizer(out: Path, repo: str, revision: str, cache_dir: Path | None = None) -> dict:
    """Paper scale: keep only the tokenizer and a pointer; the weights stay in the Hugging Face cache.

    The repo's own files are copied, not ``AutoTokenizer.from_pretrained(...).save_pretrained``: in
    transformers 5.17 that goes through ``CohereTokenizer``, which replaces tiny-aya's pre-tokeniser
    (digits in threes) with single digits and writes that back, so every id after a number changed
    (stages/lib/loading.py). ``load_tokenizer`` then reads the copy with the file's own pipeline.
    """
    import shutil

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from stages.lib.loading import load_tokenizer

    if revision == UNPINNED:
        raise BaseError(f"base.revision: still {UNPINNED!r}; set the commit of {repo} to use")
    out.mkdir(parents=True, exist_ok=True)
    copied = {}
    for name in HUB_TOKENIZER_FILES:
        try:
            path = Path(hf_hub_download(repo, name, revision=revision, cache_dir=cache_dir))
        except EntryNotFoundError as error:  # also LocalEntryNotFoundError: offline and not in the cache
            if name in REQUIRED_TOKENIZER_FILES:
                raise BaseError(f"{repo}@{revision}: cannot read {name} ({type(error).__name__}: {error})") from None
            continue
        shutil.copyfile(path, out / name)
        copied[name] = file_sha256(out / name)
    load_tokenizer(out)  # it must load before anything downstream reads it
    resolved = {"kind": "hub", "repo": repo, "revision": revision, "files": copied}
    write_json(out / "build.json", resolved)
    return resolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="read the base section from here (the stage)")
    parser.add_argument("--out", default="models/base", help="the folder to save the model and tokenizer into")
    parser.add_argument("--data", default="data", help="the folder that holds the condition datasets")
    parser.add_argument("--datasets", nargs="+", help="by hand: datasets whose train split trains the tokenizer")
    parser.add_argument("--seed", type=int, default=42, help="by hand: the seed of the model's initialisation")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--config-json", default="{}", help="by hand: Cohere2Config keys overriding the smoke config")
    args = parser.parse_args(argv)
    out = Path(args.out)

    try:
        if args.datasets:  # by hand, outside the pipeline
            overrides = json.loads(args.config_json)
            if not isinstance(overrides, dict):
                raise BaseError("--config-json must be a JSON object")
            datasets, seed, vocab_size = args.datasets, args.seed, args.vocab_size
        else:
            params = load_params(args.params)
            base = params.base
            if base.kind == "hub":
                resolved = save_hub_tokenizer(out, base.repo, base.revision)
                write_provenance(out, "base", resolved)
                print(f"base: tokenizer of {base.repo}@{base.revision} -> {out}")
                return 0
            overrides, datasets, seed, vocab_size = dict(base.config), base.tokenizer_datasets, base.seed, base.vocab_size
        config_kwargs = {**SMOKE_CONFIG, **overrides}
        pretrain, evaluate = (None, None) if args.datasets else (base.pretrain, params.evaluate)
        resolved = build(out, Path(args.data), datasets, seed, vocab_size, config_kwargs, pretrain, evaluate)
    except (BaseError, BenchmarkError, ParamsError, StrictDataclassError, OSError, ValueError, TypeError) as error:
        print(f"base: {error}", file=sys.stderr)  # JSONDecodeError is a ValueError
        return 2
    write_provenance(out, "base", resolved)
    print(f"base: vocab {resolved['vocab_size']}, seed {seed}, {len(datasets)} datasets -> {out}")
    return 0


if __name__ == "__main__":
    exit_stage(main)
