"""package: one condition's training dataset, as training reads it and as the Hub publishes it.

    python -m stages.package --dataset condition-2-zh-5k      # dvc.yaml: package@condition-2-zh-5k

Reads ``data/<dataset>/{train,validation}-00000-of-00001.parquet`` (written by subset,
transpile, native or translate, with condition 1's split membership and ``idx``) and the
tokenizer the base stage saved in ``models/base`` (smoke: trained on the smoke corpora; paper:
``base.repo`` at ``base.revision``).
Writes ``data/packaged/<dataset>/``: the two splits with the original's columns (``code``,
``code_en``, ``language``, ``file_path``, ``license``, ``idx``, ``token_count``, where
``token_count = len(tokenizer.encode(code, add_special_tokens=False))`` as
``package_dataset.py`` computed it) and ``README.md``, the dataset card: Hub metadata
(``DatasetCardData``: license, language, source datasets, size category, configs; see
stages/lib/cards.py), row and token counts, the sha256 of each split file, the tokenizer and
the upstream provenance.
``datasets.load_dataset("parquet", data_dir="data/packaged/<dataset>")`` loads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pyarrow as pa
from huggingface_hub import DatasetCardData
from tokenizers import Tokenizer

from stages.lib import cards
from stages.lib.errors import exit_stage
from stages.lib.params import Base, Params, ParamsError, load_params
from stages.lib.paths import safe_join
from stages.lib.provenance import content_provenance, write_provenance
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_provenance, read_rows, split_path, write_parquet

PACKAGED_SCHEMA = CONDITION_SCHEMA.append(pa.field("token_count", pa.int64()))


def load_tokenizer(models: Path) -> Tokenizer:
    """The base's tokenizer as the ``tokenizers`` backend that transformers runs under it.

    ``models/base/tokenizer.json`` is that backend serialised (``save_pretrained`` of tiny-aya-base's
    tokenizer at paper scale, the base stage's own at smoke scale), and with special tokens off
    the counts are the original's ``len(tokenizer.encode(code, add_special_tokens=False))``
    (tests compare them with ``AutoTokenizer``). Not importing transformers saves 6 s of the
    stage's 8.7 s, paid once per dataset.
    """
    path = models / "base" / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer; build the base first (`dvc repro base`)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for a file it cannot parse
        raise ValueError(f"{path}: not a tokenizers file ({error})") from error


def tokenizer_identity(base: Base, models: Path) -> dict:
    data = (models / "base" / "tokenizer.json").read_bytes()
    identity = {"tokenizer_sha256": hashlib.sha256(data).hexdigest()}
    if base.kind == "hub":
        identity.update(repo=base.repo, revision=base.revision)
    return identity


def with_token_counts(rows: list[dict], tokenizer: Tokenizer) -> list[dict]:
    counts = [len(e.ids) for e in tokenizer.encode_batch([r["code"] for r in rows], add_special_tokens=False)]
    return [{**row, "token_count": count} for row, count in zip(rows, counts)]


def card_data(params: Params, dataset: str, splits: dict[str, list[dict]]) -> tuple[DatasetCardData, dict]:
    """The card's Hub metadata (stages/lib/cards.py) and the source corpus, from the first run training on it."""
    run = next((r for r in params.runs.values() if r.dataset == dataset), None)
    if run is None:
        raise ParamsError(f"params.yaml: runs: no run trains on {dataset!r}")
    source = cards.source_corpus(params, run)
    licenses = sorted({row["license"] for rows in splits.values() for row in rows if row["license"]})
    rows = sum(len(r) for r in splits.values())
    meta = cards.dataset_card_data(dataset, list(splits), rows, run.data_lang, licenses, source, smoke=params.scale == "smoke")
    return meta, source


def card(dataset: str, splits: dict[str, list[dict]], digests: dict[str, str], tokenizer: dict, upstream: dict,
         meta: DatasetCardData, source: dict) -> str:
    header = [cards.dataset_front_matter(meta).rstrip("\n")]
    corpus = f"`{source['corpus']}` at `{source['revision']}`" if cards.is_hub_corpus(source) else source["corpus"]
    lines = [
        f"# {dataset}",
        "",
        "A training dataset of the Language, Decoded reproduction, built by `dvc repro` "
        "(stages/package.py). Columns: code, code_en, language, file_path, license, idx, token_count.",
        "",
        f"Source files: {corpus}. Each file keeps its own license (column `license`).",
        "",
        "| split | rows | tokens | sha256 |",
        "|---|---|---|---|",
        *[
            f"| {split} | {len(rows)} | {sum(r['token_count'] for r in rows)} | `{digests[split]}` |"
            for split, rows in splits.items()
        ],
        "",
        "Tokenizer: " + ", ".join(f"{k} `{v}`" for k, v in tokenizer.items()),
        "",
        "Upstream provenance (the stage that wrote the rows, its resolved params and package versions):",
        "",
        "```json",
        json.dumps(upstream, indent=2, sort_keys=True, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(header + lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="one of package.datasets")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data")
    parser.add_argument("--models", default="models")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.dataset not in params.package.datasets:
            raise ParamsError(f"{args.params}: package.datasets: {args.dataset!r} is not listed")
        source = safe_join(args.data, args.dataset)
        out = safe_join(args.data, "packaged", args.dataset)
        rows = {split: read_rows(split_path(source, split)) for split in SPLITS}
        upstream = read_provenance(split_path(source, "train"))
        meta, corpus = card_data(params, args.dataset, rows)
        tokenizer = load_tokenizer(Path(args.models))
    except (ParamsError, FileNotFoundError, ValueError, OSError) as error:
        print(f"package@{args.dataset}: {error}", file=sys.stderr)
        return 2

    identity = tokenizer_identity(params.base, Path(args.models))
    # only what decides the tokenizer: the tiny model's shape and seed do not change token counts
    tokenizer_keys = {"kind", "repo", "revision", "vocab_size", "tokenizer_datasets"}
    resolved = {"dataset": args.dataset, "base": params.base.model_dump(mode="json", include=tokenizer_keys)}
    provenance = content_provenance("package", resolved, {**identity, "upstream": upstream})
    splits, digests = {}, {}
    for split in SPLITS:
        splits[split] = with_token_counts(rows[split], tokenizer)
        path = split_path(out, split)
        write_parquet(path, splits[split], PACKAGED_SCHEMA, provenance)
        digests[split] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "README.md").write_text(card(args.dataset, splits, digests, identity, upstream, meta, corpus), encoding="utf-8")
    write_provenance(out, "package", resolved, identity)
    print(f"package@{args.dataset}: " + ", ".join(f"{s} {len(r)}" for s, r in splits.items()) + f" -> {out}")
    return 0


if __name__ == "__main__":
    exit_stage(main)
