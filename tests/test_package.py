"""package: token counts with the base tokenizer, split membership kept, a card with hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from stages import package
from stages.lib.params import parse_params
from stages.lib.tables import CONDITION_SCHEMA, read_provenance, read_rows, split_path, write_parquet
from tools.configure import render


def save_tokenizer(folder: Path, texts: list[str]) -> PreTrainedTokenizerFast:
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<BOS_TOKEN>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<BOS_TOKEN>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def rows(n: int) -> list[dict]:
    return [{"code": f"def f{i}():\n    return {i} * {i}\n", "code_en": "", "language": "en",
             "file_path": f"{i:09d}_r_f.py", "license": "MIT", "idx": i} for i in range(n)]


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    source = data / "condition-1-en-5k"
    write_parquet(split_path(source, "train"), rows(5), CONDITION_SCHEMA, {"stage": "subset"})
    write_parquet(split_path(source, "validation"), rows(2), CONDITION_SCHEMA, {"stage": "subset"})
    tokenizer = save_tokenizer(tmp_path / "models" / "base", [r["code"] for r in rows(5)])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(render("smoke", "phase3")))
    args = ["--dataset", "condition-1-en-5k", "--params", str(params), "--data", str(data),
            "--models", str(tmp_path / "models")]
    return tmp_path, args, tokenizer


def test_token_counts_membership_and_card(setup):
    tmp_path, args, tokenizer = setup
    assert package.main(args) == 0
    out = tmp_path / "data" / "packaged" / "condition-1-en-5k"
    train = read_rows(split_path(out, "train"))
    assert [r["idx"] for r in train] == list(range(5))
    assert all(r["token_count"] == len(tokenizer.encode(r["code"], add_special_tokens=False)) > 0 for r in train)
    card = (out / "README.md").read_text()
    for split in ("train", "validation"):
        digest = hashlib.sha256(split_path(out, split).read_bytes()).hexdigest()
        assert digest in card
    assert "config_name: condition-1-en-5k" in card and '"stage": "subset"' in card
    assert read_provenance(split_path(out, "train"))["upstream"] == {"stage": "subset"}

    first = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "provenance.json"}
    assert package.main(args) == 0
    assert first == {p.name: p.read_bytes() for p in out.iterdir() if p.name != "provenance.json"}


def test_unlisted_dataset_and_missing_input_are_named(setup, capsys):
    tmp_path, args, _ = setup
    assert package.main(["--dataset", "condition-9-xx-5k", *args[2:]]) == 2
    assert "package.datasets" in capsys.readouterr().err
    assert package.main(["--dataset", "condition-2-zh-5k", *args[2:]]) == 2
    assert "condition-2-zh-5k" in capsys.readouterr().err


def test_counts_equal_the_transformers_tokenizer_of_the_smoke_base(tmp_path):
    """The stage counts with the ``tokenizers`` backend; the original counted with AutoTokenizer."""
    from transformers import AutoTokenizer

    from stages.base import train_tokenizer

    texts = [
        "def add(a, b):\n    return a + b  # 12345\n",
        "定义 加(甲, 乙):\n    返回 甲 + 乙\n",
        "si x:\n\tdevolver 'ñandú'\r\n",
        "اگر x:\n    واپس 'ق'\n",
        "s = '<BOS_TOKEN>' + '<|END_OF_TURN_TOKEN|>'  # special tokens inside code\n",
        "cafe\u0301 = 'NFC'\n   \n\n",
    ]
    train_tokenizer(texts * 3, 400).save_pretrained(tmp_path / "base")
    backend = package.load_tokenizer(tmp_path)
    reference = AutoTokenizer.from_pretrained(tmp_path / "base", trust_remote_code=False)
    counted = package.with_token_counts([{"code": t} for t in texts], backend)
    assert [r["token_count"] for r in counted] == [len(reference.encode(t, add_special_tokens=False)) for t in texts]


def test_missing_or_broken_tokenizer_is_named(setup, capsys):
    tmp_path, args, _ = setup
    tokenizer_json = tmp_path / "models" / "base" / "tokenizer.json"
    tokenizer_json.write_text("{not json", encoding="utf-8")
    assert package.main(args) == 2
    assert str(tokenizer_json) in capsys.readouterr().err
    tokenizer_json.unlink()
    assert package.main(args) == 2
    assert "dvc repro base" in capsys.readouterr().err
    assert not (tmp_path / "data" / "packaged" / "condition-1-en-5k").exists()


def test_the_card_carries_hub_metadata_that_huggingface_hub_parses(setup):
    from huggingface_hub import DatasetCard

    tmp_path, args, _ = setup
    assert package.main(args) == 0
    card = DatasetCard.load(tmp_path / "data" / "packaged" / "condition-1-en-5k" / "README.md")
    data = card.data.to_dict()
    assert data["license"] == ["mit"] and data["language"] == ["en"] and data["size_categories"] == ["n<1K"]
    assert data["source_datasets"] == ["original"] and "smoke-test" in data["tags"]  # installed packages, not the Hub
    assert data["configs"] == [{"config_name": "condition-1-en-5k", "data_files": [
        {"split": "train", "path": "train-00000-of-00001.parquet"},
        {"split": "validation", "path": "validation-00000-of-00001.parquet"}]}]
    assert "Source files: installed distributions (" in card.text and "| train | 5 |" in card.text


def test_paper_cards_name_the_hub_corpus_and_map_licenses():
    params = parse_params(render("paper", "phase3"))
    splits = {"train": [{"license": "Apache-2.0"}] * 4000 + [{"license": "MIT"}] * 500, "validation": [{"license": "WTFPL"}] * 600}
    meta, source = package.card_data(params, "condition-2-ur-5k", splits)
    data = meta.to_dict()
    assert data["source_datasets"] == ["bigcode/the-stack-v2-dedup"] and source["revision"] == params.fetch.sources["code"].revision
    assert data["license"] == ["apache-2.0", "mit", "other"] and data["language"] == ["en", "ur"]
    assert data["size_categories"] == ["1K<n<10K"] and "smoke-test" not in data["tags"]
    native, _ = package.card_data(params, "condition-3-zh-5k", {"train": [{"license": "MIT"}]})
    assert native.to_dict()["source_datasets"] == ["legesher/language-decoded-data"]
    with pytest.raises(package.ParamsError, match="no run trains on 'condition-9-xx-5k'"):
        package.card_data(params, "condition-9-xx-5k", splits)
