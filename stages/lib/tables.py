"""Reading and writing the corpus tables so that a rebuild gives the same bytes.

Datasets are laid out as on the Hugging Face Hub (``data/<config>/<split>-00000-of-00001.parquet``),
so ``datasets.load_dataset("parquet", data_dir=...)`` reads them the same way it
reads the published ``legesher/language-decoded-data`` configs. Writes go through a
temporary file and a rename: a killed stage never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

SPLITS = ("train", "validation")


def split_path(dataset_dir: Path | str, split: str) -> Path:
    return Path(dataset_dir) / f"{split}-00000-of-00001.parquet"


def write_parquet(path: Path | str, rows: Sequence[dict], schema: pa.Schema, provenance: dict | None = None) -> None:
    """One parquet file with an explicit schema, zstd, and the provenance in its footer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {field.name: [row[field.name] for row in rows] for field in schema}
    table = pa.table(columns, schema=schema)
    if provenance is not None:
        meta = {b"provenance": json.dumps(provenance, sort_keys=True, ensure_ascii=False).encode("utf-8")}
        table = table.replace_schema_metadata(meta)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=3)
    tmp.replace(path)


def read_rows(path: Path | str, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        table = pq.read_table(path, columns=list(columns) if columns else None)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; run the stage that produces it (`dvc repro`)") from None
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file: {error}") from None
    return table.to_pylist()


def read_provenance(path: Path | str) -> dict:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"provenance", b"{}"))


def write_jsonl(path: Path | str, records: Iterable[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_jsonl(path: Path | str) -> list[dict]:
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not a JSON line: {error.msg}") from None
    return rows


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The schema shared by every condition's dataset (the published Phase 3 row schema,
# without token_count, which needs the base model's tokenizer and is added by training).
CONDITION_SCHEMA = pa.schema(
    [
        ("code", pa.string()),
        ("code_en", pa.string()),
        ("language", pa.string()),
        ("file_path", pa.string()),
        ("license", pa.string()),
        ("idx", pa.int64()),
    ]
)

POOL_SCHEMA = pa.schema(
    [
        ("file_path", pa.string()),
        ("code", pa.string()),
        ("sha256", pa.string()),
        ("size", pa.int64()),
        ("line_count", pa.int64()),
        ("license", pa.string()),
        ("stars", pa.int64()),
        ("repo_name", pa.string()),
        ("path", pa.string()),
        ("record_index", pa.int64()),
        ("source", pa.string()),
        ("revision", pa.string()),
    ]
)
