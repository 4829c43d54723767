"""native: condition 3, code written in or with the target language.

    python -m stages.native                 # dvc.yaml: native

Two ways, chosen by ``native.mode``:

- ``blend`` (smoke) rebuilds what ``create_condition3_blend.py`` did: every native file
  (here: the Chinese-authored code base fetched as ``data/raw/<source>/``), then a fill of
  transpiled files up to the tier size. The fill pool is ``data/<fill_from>/`` less the
  files of ``data/<exclude_from>/``, sorted by ``file_path``; the fill is
  ``random.Random(seed).sample(range(n), size - n_native)``, sorted. The blend is sorted by
  ``file_path`` and split like condition 1 (``train_test_split(test_size, seed)``).
- ``import`` (paper) reads the published ``condition-3-zh-5k`` config at a pinned revision:
  a fixed artefact (3,486 native + 1,514 Phase 2 transpiled files), not rebuilt.

Writes ``data/condition-3-<lang>-<tier>/`` in the schema of every condition (``code_en``
is empty for native files), ``composition.jsonl`` (each row's ``source_type``: native or
transpiled), ``provenance.json``, and ``metrics/data/native.json``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from stages.lib.errors import exit_stage
from stages.lib.params import UNPINNED, Native, ParamsError, load_params
from stages.lib.paths import safe_join
from stages.lib.provenance import content_provenance, write_json, write_provenance
from stages.lib.tables import CONDITION_SCHEMA, SPLITS, read_rows, split_path, write_jsonl, write_parquet
from stages.lib.splits import SubsetError, split_indices



def blend_rows(native: list[dict], fill_pool: list[dict], exclude: set[str], size: int, seed: int, lang: str) -> list[dict]:
    """Native files first, then a seeded fill of transpiled files; sorted by file_path."""
    rows = [
        {"code": r["code"], "code_en": "", "language": lang, "file_path": r["file_path"], "license": r["license"],
         "source_type": "native"}
        for r in native
    ]
    pool = sorted((r for r in fill_pool if r["file_path"] not in exclude), key=lambda r: r["file_path"])
    wanted = max(0, size - len(rows))
    if wanted > len(pool):
        raise SubsetError(f"the fill pool has {len(pool)} files, {wanted} are needed to reach {size}")
    picks = sorted(random.Random(seed).sample(range(len(pool)), wanted))
    rows += [
        {"code": pool[i]["code"], "code_en": pool[i]["code_en"], "language": lang, "file_path": pool[i]["file_path"],
         "license": pool[i]["license"], "source_type": "transpiled"}
        for i in picks
    ]
    return sorted(rows, key=lambda r: r["file_path"])


def read_dataset(folder: Path) -> list[dict]:
    return [row for split in SPLITS for row in read_rows(split_path(folder, split))]


def blend(cfg: Native, size: int, raw: Path, data: Path) -> list[dict]:
    native = read_rows(raw / cfg.source / "files.parquet", ["file_path", "code", "license"])
    fill_pool = read_dataset(data / cfg.fill_from)
    exclude = {row["file_path"] for row in read_dataset(data / cfg.exclude_from)}
    return blend_rows(native, fill_pool, exclude, size, cfg.seed, cfg.lang)


def import_published(cfg: Native) -> list[dict]:
    corpus = cfg.published
    """All rows of the published config, with its own source_type, in file_path order."""
    import datasets  # only the paper path needs it

    local = Path(corpus.dataset).is_dir()
    loaded = datasets.load_dataset(corpus.dataset, corpus.config, revision=None if local else corpus.revision)
    rows = []
    for split in sorted(loaded):
        for r in loaded[split]:
            rows.append(
                {"code": r["code"], "code_en": r.get("code_en") or "", "language": r.get("language") or cfg.lang,
                 "file_path": r["file_path"], "license": r.get("license") or "unknown",
                 "source_type": r.get("source_type") or "native"}
            )
    return sorted(rows, key=lambda r: r["file_path"])


def split_blend(rows: list[dict], test_size: float, seed: int) -> dict[str, list[dict]]:
    return {
        split: [{**rows[i], "idx": idx} for idx, i in enumerate(indices)]
        for split, indices in split_indices(len(rows), test_size, seed).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--data", default="data")
    parser.add_argument("--metrics", default="metrics/data")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
    except ParamsError as error:
        print(error, file=sys.stderr)
        return 2
    cfg = params.native
    size = params.subset.tiers[cfg.tier]
    try:
        out = safe_join(args.data, f"condition-3-{cfg.lang}-{cfg.tier}")
        if cfg.mode == "import":
            if cfg.published.revision == UNPINNED:
                raise SubsetError(f"{args.params}: native.published.revision: still {UNPINNED!r}; set the commit to import")
            rows = import_published(cfg)
        else:
            rows = blend(cfg, size, Path(args.raw), Path(args.data))
        splits = split_blend(rows, cfg.test_size, cfg.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"native: {error}", file=sys.stderr)
        return 2

    resolved = {**cfg.model_dump(mode="json"), "size": size}
    provenance = content_provenance("native", resolved)
    for split in SPLITS:
        write_parquet(split_path(out, split), splits[split], CONDITION_SCHEMA, provenance)
    write_jsonl(
        out / "composition.jsonl",
        ({"split": s, "idx": r["idx"], "file_path": r["file_path"], "source_type": r["source_type"]}
         for s in SPLITS for r in splits[s]),
    )
    write_provenance(out, "native", resolved)
    counts = {
        split: {kind: sum(r["source_type"] == kind for r in splits[split]) for kind in ("native", "transpiled")}
        for split in SPLITS
    }
    write_json(Path(args.metrics) / "native.json", {"native": {f"{cfg.lang}-{cfg.tier}": counts}})
    print(f"native: {len(rows)} files ({sum(c['native'] for c in counts.values())} native) -> {out}")
    return 0


if __name__ == "__main__":
    exit_stage(main)
