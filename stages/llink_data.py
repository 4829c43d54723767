"""llink_data: the parallel pairs of LLINK, split into train and dev.

    python -m stages.llink_data [--params params.yaml]      # dvc.yaml: llink_data

Smoke (``llink.data.source: synthetic``): English template sentences and a Khmer-script
foreign side with its own word order and Khmer digits, drawn with ``llink.data.seed``.
Paper (``jsonl``): the user's ``{"english", "foreign"}`` file at ``llink.data.path`` (e.g.
ParaCrawl v2 en-km), checked row by row and read with ``datasets``.
Then the original's split: dedup by English, seeded shuffle, dev first, train next.

Writes data/llink/pairs/{train,dev}.jsonl, provenance.json; metrics/llink/data.json.
"""

from __future__ import annotations

from pathlib import Path

from stages.lib.errors import exit_stage
from stages.lib.llink.data import read_jsonl_pairs, split_pairs, synthetic_pairs, write_pairs
from stages.lib.llink.run import main_of, provenance, stamp, write_json
from stages.lib.params import Llink
from stages.lib.provenance import file_sha256

OUT = Path("data/llink/pairs")
METRICS = Path("metrics/llink/data.json")


def run(llink: Llink, out: Path = OUT, metrics: Path = METRICS) -> dict:
    data = llink.data
    if data.source == "synthetic":
        pairs = synthetic_pairs(data.n_train + data.n_dev, data.seed, data.lexicon_seed)
        source = {"source": "synthetic"}
    else:
        path = Path(data.path)
        pairs = read_jsonl_pairs(path)
        source = {"source": "jsonl", "path": str(path), "sha256": file_sha256(path), "rows": len(pairs)}
    train, dev = split_pairs(pairs, data.n_train, data.n_dev, data.seed, data.max_foreign_chars)
    write_pairs(out / "train.jsonl", train)
    write_pairs(out / "dev.jsonl", dev)
    stamp(out, "llink_data", data)
    mean = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
    summary = {
        "train": len(train),
        "dev": len(dev),
        "english_words": mean([len(p.english.split()) for p in train]),
        "foreign_chars": mean([len(p.foreign) for p in train]),
        "sha256": {name: file_sha256(out / f"{name}.jsonl") for name in ("train", "dev")},
    }
    write_json(metrics, {**summary, **source, "provenance": provenance("llink_data", data)})
    return {"train": len(train), "dev": len(dev)}


main = main_of("llink_data", run)

if __name__ == "__main__":
    exit_stage(main)
