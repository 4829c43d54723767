"""Condition 3: the original's blend at smoke scale, the published artefact at paper scale."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from stages import native
from tools.configure import render
from stages.lib.tables import read_jsonl, read_rows, split_path
from stages.lib.splits import SubsetError


def rows(prefix: str, n: int, **extra) -> list[dict]:
    return [{"file_path": f"{prefix}{i:03d}.py", "code": f"# {prefix}{i}\n", "code_en": f"# en {i}\n", "license": "MIT", **extra}
            for i in range(n)]


def test_blend_is_native_plus_a_seeded_fill_sorted_by_path():
    natives = rows("n", 3)
    pool = rows("t", 10)
    blended = native.blend_rows(natives, pool, exclude={"t000.py"}, size=6, seed=42, lang="zh")
    assert [r["file_path"] for r in blended] == sorted(r["file_path"] for r in blended)
    assert sum(r["source_type"] == "native" for r in blended) == 3
    fill_pool = [r["file_path"] for r in pool[1:]]
    expected = {fill_pool[i] for i in random.Random(42).sample(range(9), 3)}
    assert {r["file_path"] for r in blended if r["source_type"] == "transpiled"} == expected
    assert all(r["code_en"] == "" for r in blended if r["source_type"] == "native")


def test_fill_too_small_is_an_error():
    with pytest.raises(SubsetError, match="fill pool has 2 files"):
        native.blend_rows(rows("n", 1), rows("t", 2), set(), size=10, seed=42, lang="zh")


def test_import_reads_a_folder_in_the_hubs_layout(tmp_path, capsys):
    hub = tmp_path / "language-decoded-data"
    folder = hub / "data" / "condition-3-zh-5k"
    folder.mkdir(parents=True)
    for split, n in (("train", 9), ("validation", 1)):
        table = pa.table({
            "code": [f"print({i})\n" for i in range(n)], "code_en": [None] * n, "language": ["zh"] * n,
            "file_path": [f"{split}{i}.py" for i in range(n)], "license": ["UNKNOWN"] * n,
            "token_count": [3] * n, "source_type": ["native"] * (n - 1) + ["transpiled"],
        })
        pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
    (hub / "README.md").write_text(
        "---\nconfigs:\n- config_name: condition-3-zh-5k\n  data_files:\n"
        "  - split: train\n    path: data/condition-3-zh-5k/train-*.parquet\n"
        "  - split: validation\n    path: data/condition-3-zh-5k/validation-*.parquet\n---\n"
    )
    data = render("paper", "phase3")
    data["native"]["published"] = {"dataset": str(hub), "config": "condition-3-zh-5k", "revision": "v1"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert native.main(["--params", str(params), "--data", str(out), "--metrics", str(tmp_path / "m")]) == 0
    train = read_rows(split_path(out / "condition-3-zh-5k", "train"))
    validation = read_rows(split_path(out / "condition-3-zh-5k", "validation"))
    assert len(train) + len(validation) == 10 and len(validation) == 1
    composition = read_jsonl(out / "condition-3-zh-5k" / "composition.jsonl")
    assert sum(c["source_type"] == "transpiled" for c in composition) == 2

    data["native"]["published"]["revision"] = "PIN-ME"
    params.write_text(yaml.safe_dump(data))
    assert native.main(["--params", str(params), "--data", str(out)]) == 2
    assert "native.published.revision" in capsys.readouterr().err
