"""subset: draw the shared English file subset of one size tier, and split it.

    python -m stages.subset --tier 5k            # dvc.yaml: subset@5k

Reproduces ``create_subset.py`` exactly: the pool's ``file_path`` values sorted in code
point order, ``random.Random(seed).sample(sorted_paths, size)``, sorted again; then the
rows sorted by ``file_path`` and split as ``datasets``' ``train_test_split(test_size,
seed=seed)`` does (``np.random.default_rng(seed).permutation(n)``: the first
``ceil(test_size * n)`` indices are validation, the rest train, both in permutation
order). ``idx`` is the row position inside each split, the key that joins condition 1
to conditions 2 and 5 (which are made from these rows, never re-sampled).

Reads ``data/raw/<subset.source>/files.parquet``; writes ``data/condition-1-en-<tier>/``
(``{train,validation}-00000-of-00001.parquet``, ``subset_manifest.json``,
``provenance.json``) and ``metrics/data/subset-<tier>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.paths import safe_join
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.splits import draw_paths, split_indices
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_rows, sha256_text, split_path, write_parquet


def build_splits(pool: list[dict], size: int, seed: int, test_size: float) -> tuple[list[str], dict[str, list[dict]]]:
    selected = draw_paths([row["file_path"] for row in pool], size, seed)
    by_path = {row["file_path"]: row for row in pool}
    rows = [by_path[path] for path in selected]  # already sorted by file_path
    splits = {}
    for split, indices in split_indices(len(rows), test_size, seed).items():
        splits[split] = [
            {
                "code": rows[i]["code"],
                "code_en": rows[i]["code"],
                "language": "en",
                "file_path": rows[i]["file_path"],
                "license": rows[i]["license"],
                "idx": idx,
            }
            for idx, i in enumerate(indices)
        ]
    return selected, splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", required=True, help="a key of subset.tiers in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data")
    parser.add_argument("--metrics", default="metrics/data")
    args = parser.parse_args(argv)

    try:
        params = load_params(args.params)
    except ParamsError as error:
        print(error, file=sys.stderr)
        return 2
    cfg = params.subset
    if args.tier not in cfg.tiers:
        print(f"{args.params}: subset.tiers.{args.tier}: no such tier", file=sys.stderr)
        return 2
    size = cfg.tiers[args.tier]
    try:
        pool_file = safe_join(args.raw, cfg.source) / "files.parquet"  # the file may be a link into the DVC cache
        out = safe_join(args.out, f"condition-1-en-{args.tier}")
        pool = read_rows(pool_file, ["file_path", "code", "license"])
        selected, splits = build_splits(pool, size, cfg.seed, cfg.test_size)
    except (FileNotFoundError, ValueError) as error:
        print(f"subset@{args.tier}: {error}", file=sys.stderr)
        return 2

    resolved = {"source": cfg.source, "seed": cfg.seed, "test_size": cfg.test_size, "tier": args.tier, "size": size}
    provenance = content_provenance("subset", resolved)
    for split in SPLITS:
        write_parquet(split_path(out, split), splits[split], CONDITION_SCHEMA, provenance)
    write_json(
        out / "subset_manifest.json",
        {
            "source": cfg.source,
            "seed": cfg.seed,
            "split_ratio": cfg.test_size,
            "requested_size": size,
            "subset_size": len(selected),
            "file_paths": selected,
            "splits": {
                split: [{"idx": r["idx"], "file_path": r["file_path"], "sha256": sha256_text(r["code"])} for r in rows]
                for split, rows in splits.items()
            },
        },
    )
    write_provenance(out, "subset", resolved)
    write_json(
        Path(args.metrics) / f"subset-{args.tier}.json",
        {
            "subset": {
                args.tier: {
                    "pool": len(pool),
                    "requested": size,
                    "selected": len(selected),
                    "train": len(splits["train"]),
                    "validation": len(splits["validation"]),
                    "chars": sum(len(r["code"]) for rows in splits.values() for r in rows),
                }
            }
        },
    )
    print(f"subset@{args.tier}: {len(splits['train'])} train / {len(splits['validation'])} validation -> {out}")
    return 0


if __name__ == "__main__":
    exit_stage(main)
