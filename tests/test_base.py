"""base: a tiny Cohere2 model and its tokenizer, loaded the way tiny-aya-base is, rebuilt byte for byte."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Cohere2ForCausalLM

from stages.base import BaseError, build_model, main, train_tokenizer
from stages.lib.tables import CONDITION_SCHEMA, split_path, write_parquet

ROOT = Path(__file__).resolve().parents[1]

SNIPPETS = {
    "condition-1-en-tiny": [
        "def add(a, b):\n    return a + b\n",
        "for item in items:\n    if item > 10:\n        print(item)\n",
        "class Stack:\n    def __init__(self):\n        self.items = []\n",
    ],
    "condition-2-zh-tiny": [
        "定义 加(甲, 乙):\n    返回 甲 + 乙\n",
        "对于 项 在 列表:\n    如果 项 > 10:\n        打印(项)\n",
    ],
    "condition-2-ur-tiny": [
        "تعریف جمع(الف, ب):\n    واپس الف + ب\n",
        "ہر عنصر میں فہرست:\n    چھاپو(عنصر)\n",
    ],
}
DATASETS = list(SNIPPETS)
# a small vocabulary: the 256 bytes and 8 special tokens, plus some merges
VOCAB = 300
ROUND_TRIP = [
    "def total(xs):\n    return sum(x * 2 for x in xs)  # 12345\n\tpass\r\n",
    "定义 总和(列表):\n    返回 求和(列表)  # 注释：中文\n",
    "تعریف مجموعہ(فہرست):\n    واپس جمع(فہرست)  # تبصرہ\n",
    "emoji 🤗 and never-seen bytes ĀĞ \x00 \u200d",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name, codes in SNIPPETS.items():
        rows = [
            {"code": code * 3, "code_en": code, "language": name.split("-")[2], "file_path": f"f{i}.py", "license": "MIT", "idx": i}
            for i, code in enumerate(codes)
        ]
        write_parquet(split_path(root / name, "train"), rows, CONDITION_SCHEMA)
    return root


def build_args(out: Path, data: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--data", str(data), "--datasets", *DATASETS, "--vocab-size", str(VOCAB), *extra]


@pytest.fixture(scope="module")
def built(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "smoke"
    assert main(build_args(out, data_dir)) == 0
    return out


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_loads_like_the_paper_base(built, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(built, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(built, trust_remote_code=False)
    assert type(model) is Cohere2ForCausalLM
    assert type(tokenizer).__name__ == "CohereTokenizer"
    assert model.config.vocab_size == len(tokenizer) == VOCAB
    assert "full_attention" in model.config.layer_types and "sliding_attention" in model.config.layer_types
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<PAD>")
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert ids == (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id)
    assert tokenizer("x = 1").input_ids[0] == tokenizer.bos_token_id


def test_outputs_are_safetensors_and_provenance(built):
    names = set(files(built))
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "build.json"} <= names
    assert not any(name.endswith((".bin", ".pt")) for name in names)
    text = (built / "build.json").read_text(encoding="utf-8")
    assert str(built) not in text and str(ROOT) not in text
    assert "condition-2-zh-tiny" in text and '"seed": 42' in text


def test_rebuild_is_byte_identical(built, data_dir, tmp_path):
    again = tmp_path / "again"
    assert main(build_args(again, data_dir)) == 0
    assert files(again) == files(built)


def test_tokenizer_training_ignores_thread_count(data_dir, tmp_path):
    # a fresh process per thread count: rayon reads RAYON_NUM_THREADS once, at first use
    outs = {}
    for threads in ("1", "4"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
        code = "import sys; from stages.base import main; sys.exit(main(sys.argv[1:]))"
        out = tmp_path / f"threads{threads}"
        subprocess.run([sys.executable, "-c", code, *build_args(out, data_dir)], cwd=ROOT, env=env, check=True, capture_output=True)
        outs[threads] = (out / "tokenizer.json").read_bytes()
    assert outs["1"] == outs["4"]


def test_another_seed_changes_only_the_weights(built, data_dir, tmp_path):
    other = tmp_path / "seed7"
    assert main(build_args(other, data_dir, "--seed", "7")) == 0
    assert (other / "model.safetensors").read_bytes() != (built / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_tokenizer_round_trips(built, text):
    tokenizer = AutoTokenizer.from_pretrained(built)
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text


def test_tokenizer_learned_merges_from_every_corpus():
    tokenizer = train_tokenizer([c * 5 for codes in SNIPPETS.values() for c in codes], VOCAB)
    assert len(tokenizer("    return a + b").input_ids) < len("    return a + b".encode())
    assert len(tokenizer("返回 甲 + 乙", add_special_tokens=False).input_ids) < len("返回 甲 + 乙".encode())


def test_forward_and_generate(built):
    model = AutoModelForCausalLM.from_pretrained(built)
    tokenizer = AutoTokenizer.from_pretrained(built)
    batch = tokenizer(["def add(a, b):", "定义 加"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch.input_ids.shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()
    generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert generated.shape == (2, batch.input_ids.shape[1] + 3)


def test_build_model_is_seeded():
    first, second = (build_model({"hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 1}, 300, seed=3) for _ in range(2))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_every_layer_pattern_keeps_a_full_attention_layer():
    model = build_model({"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 5}, 300, seed=0)
    assert model.config.layer_types == ["sliding_attention"] * 3 + ["full_attention", "full_attention"]


def test_bad_inputs_fail_cleanly(data_dir, tmp_path, capsys):
    with pytest.raises(BaseError, match="no merges"):
        train_tokenizer(["abc"], 100)
    assert main(build_args(tmp_path / "x", data_dir, "--config-json", "[1]")) == 2
    assert main(build_args(tmp_path / "x", data_dir, "--config-json", '{"layer_types": ["full_attention"]}')) == 2
    assert main(["--out", str(tmp_path / "y"), "--data", str(data_dir), "--datasets", "condition-9-missing"]) == 2
    assert "missing" in capsys.readouterr().err
