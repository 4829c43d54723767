"""The paper path's defects (issue 20 section 1), each shown on CPU: the tokenizer's own pipeline, one GPU
per training process with the batch checked before training, Unsloth's arguments, vLLM's refusals and rank."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from tokenizers import Regex, pre_tokenizers
from transformers import AutoTokenizer, TrainerCallback, TrainingArguments

from stages import evaluate as ev
from stages import train as tr
from stages.lib.evaluation import backends as eval_backends
from stages.lib.training import backends as train_backends
from stages import base as base_stage
from stages.base import build, cohere_pipeline, save_hub_tokenizer
from tools.configure import render
from stages.lib.loading import load_tokenizer, nf4_config
from stages.lib.params import Base, Run, Train, parse_params
from stages.lib.tables import split_path, write_parquet
from stages.package import PACKAGED_SCHEMA
from tests.conftest import profile_values

DATASET = "condition-1-en-tiny"
TEXT = "price 1234567 items"
CODES = [f"total = {n} * 1234567 + price_{n}\nprint('items', {n * 98765})\n" for n in range(24)]
# tiny-aya's pre-tokeniser groups digits in threes; CohereTokenizer imposes single digits
THREES = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\d{1,3}"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}
BASE = Base(**profile_values("base", seed=7, vocab_size=300))


def tiny_train(**overrides) -> Train:
    """The smoke profile's train section: one step of 48-token rows, no checkpoints unless a test asks."""
    return Train(**profile_values("train", **{"max_seq_length": 48, "max_steps": 1, "save_steps": None, **overrides}))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A packaged split with long numbers and a tiny base whose tokenizer.json groups digits in threes."""
    root = tmp_path_factory.mktemp("gpu-path")
    rows = [{"code": code, "code_en": code, "language": "en", "file_path": f"{i}.py", "license": "MIT", "idx": i,
             "token_count": 0} for i, code in enumerate(CODES)]
    data = root / "data" / "packaged"
    write_parquet(split_path(data / DATASET, "train"), rows, PACKAGED_SCHEMA)
    base_dir = root / "models" / "base"

    def threes_pipeline():  # BPE learns tiny-aya-like digit-group merges; CohereTokenizer then writes its own pipeline
        tokenizer = cohere_pipeline()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ])
        return tokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base_stage, "cohere_pipeline", threes_pipeline)
        build(base_dir, data, [DATASET], seed=7, vocab_size=300, config_kwargs={"hidden_size": 32, "intermediate_size": 64})
    path = base_dir / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["pre_tokenizer"] = THREES
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return root, data, base_dir


def file_ids(base_dir: Path, text: str) -> list[int]:
    return Tokenizer.from_file(str(base_dir / "tokenizer.json")).encode(text).ids


# --------------------------------------------------------------------------- 1. the tokenizer's own pipeline


def test_auto_tokenizer_replaces_the_pre_tokenizer_and_load_tokenizer_keeps_it(workspace):
    _, _, base_dir = workspace
    own = file_ids(base_dir, TEXT)
    # transformers 5.17: CohereTokenizer keeps vocab and merges only (why the stages no longer use AutoTokenizer)
    assert AutoTokenizer.from_pretrained(base_dir)(TEXT).input_ids != own
    tokenizer = load_tokenizer(base_dir)
    assert tokenizer(TEXT).input_ids == own
    assert "123" in [tokenizer.decode([i]) for i in own]  # 1|234|567 or 123|456|7: grouped, not single digits
    assert tokenizer.decode(own, skip_special_tokens=True) == TEXT
    assert tokenizer.bos_token == "<BOS_TOKEN>" and own[0] == tokenizer.bos_token_id


def test_evaluate_and_train_tokenise_with_the_files_pipeline(workspace, tmp_path):
    root, data, base_dir = workspace
    params = parse_params(render("smoke", "phase3"))
    session = ev.session_of(params, "baseline")
    backend = ev.load_backend(params, session, base_dir, root / "models")
    assert backend.encode([TEXT, CODES[3]]) == [file_ids(base_dir, TEXT), file_ids(base_dir, CODES[3])]

    out = tr.train_run(f"{DATASET}-seed42", Run(condition=1, data_lang="en", tier="tiny", seed=42, dataset=DATASET),
                       tiny_train(max_seq_length=1024), BASE, base_dir=base_dir, data_dir=data,
                       models_dir=tmp_path / "models", logs_dir=None)
    tokens = json.loads((out / "training_metrics.json").read_text(encoding="utf-8"))["data"]["tokens"]
    assert tokens == sum(len(file_ids(base_dir, code)) for code in CODES)


def test_the_hub_base_keeps_the_repos_own_tokenizer_files(workspace, tmp_path):
    """save_hub_tokenizer copies the repo's files out of a (here local, offline) Hugging Face cache."""
    _, _, base_dir = workspace
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--CohereLabs--tiny-aya-base" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(base_dir / name, snapshot / name)
    out = tmp_path / "base"
    resolved = save_hub_tokenizer(out, "CohereLabs/tiny-aya-base", commit, cache_dir=tmp_path / "hub")
    assert (out / "tokenizer.json").read_bytes() == (base_dir / "tokenizer.json").read_bytes()
    assert set(resolved["files"]) == {"tokenizer.json", "tokenizer_config.json"}
    assert load_tokenizer(out)(TEXT).input_ids == file_ids(base_dir, TEXT)


# --------------------------------------------------------------------------- 2. one device per process


def test_one_process_keeps_one_gpu():
    env = {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert tr.pin_one_device(tiny_train(backend="peft-bnb", load_in_4bit=True), env) == "2" and env["CUDA_VISIBLE_DEVICES"] == "2"
    env = {}
    assert tr.pin_one_device(tiny_train(backend="unsloth", load_in_4bit=True), env) == "0" and env["CUDA_VISIBLE_DEVICES"] == "0"
    for train, env in [(tiny_train(), {"CUDA_VISIBLE_DEVICES": "0,1"}),  # CPU: nothing to pin
                       (tiny_train(backend="peft-bnb", processes=2), {"CUDA_VISIBLE_DEVICES": "0,1"}),  # torchrun's ranks
                       (tiny_train(backend="peft-bnb"), {"CUDA_VISIBLE_DEVICES": "0,1", "LOCAL_RANK": "1"}),
                       (tiny_train(backend="peft-bnb"), {"CUDA_VISIBLE_DEVICES": ""})]:
        before = dict(env)
        assert tr.pin_one_device(train, env) is None and env == before


def test_a_process_that_sees_two_gpus_is_refused_before_training(workspace, tmp_path, monkeypatch):
    """transformers' n_gpu = device_count multiplies the batch; the real Trainer's total is checked first."""
    _, data, base_dir = workspace
    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 2))
    steps = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    with pytest.raises(tr.TrainError, match=r"global batch of 32 .* not per_device_train_batch_size x world_size = 16"):
        tr.train_run(f"{DATASET}-seed42", Run(condition=1, data_lang="en", tier="tiny", seed=42, dataset=DATASET),
                     tiny_train(), BASE, base_dir=base_dir, data_dir=data, models_dir=tmp_path / "models",
                     logs_dir=None, callbacks=(Steps(),))
    assert steps == [] and not (tmp_path / "models").exists()


# --------------------------------------------------------------------------- 3 and 8. Unsloth's arguments


def test_unsloth_gets_the_params_dtype_the_exact_name_and_the_revision():
    import torch

    hub = Base(**profile_values("base", scale="paper", revision="a" * 40))
    fp16 = train_backends.unsloth_load_kwargs(tiny_train(backend="unsloth", load_in_4bit=True, fp16=True), hub, Path("models/base"))
    assert fp16["dtype"] is torch.float16  # never Unsloth's own bfloat16 choice under the fp16 autocast
    assert fp16["use_exact_model_name"] is True and fp16["revision"] == "a" * 40
    assert fp16["model_name"] == "CohereLabs/tiny-aya-base" and fp16["load_in_4bit"] is True
    fp32 = train_backends.unsloth_load_kwargs(tiny_train(backend="unsloth", load_in_4bit=True), hub, Path("models/base"))
    assert fp32["dtype"] is torch.float32


def test_train_and_evaluate_load_the_base_through_one_helper_that_refuses_an_unpinned_revision():
    from stages.lib.base_weights import base_source
    from stages.lib.params import UNPINNED, ParamsError

    hub = Base(**profile_values("base", scale="paper", revision="a" * 40))
    assert base_source(hub, Path("models/base")) == ("CohereLabs/tiny-aya-base", {"revision": "a" * 40})
    assert base_source(BASE, Path("models/base")) == ("models/base", {})
    with pytest.raises(ParamsError, match="base.revision: still 'PIN-ME'"):
        base_source(hub.model_copy(update={"revision": UNPINNED}), Path("models/base"))
    assert train_backends.base_source is base_source and eval_backends.base_source is base_source


def test_unsloth_comes_before_transformers_or_says_what_is_missing():
    source = Path(tr.__file__).read_text(encoding="utf-8")
    body = source[source.index("def train_run("):]
    assert body.index("import_unsloth()") < body.index("from transformers import")
    try:
        import unsloth  # noqa: F401
    except ImportError:
        with pytest.raises(tr.TrainError, match="install the gpu extra"):
            tr.import_unsloth()


def test_one_nf4_config_with_double_quantisation_as_unsloth():
    import torch

    config = nf4_config(torch.float16)
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert config.bnb_4bit_compute_dtype is torch.float16
    assert "nf4_config" in Path(train_backends.__file__).read_text() and "nf4_config" in Path(eval_backends.__file__).read_text()


# --------------------------------------------------------------------------- 4, 5, 8. vLLM


def test_vllm_with_a_4bit_base_is_refused():
    data = render("smoke", "phase3")
    data["evaluate"].update(backend="vllm", load_in_4bit=True)
    with pytest.raises(Exception, match="vLLM 0.32 has no bitsandbytes loader"):
        parse_params(data)


def test_a_missing_vllm_names_the_served_backend(workspace):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    root, _, base_dir = workspace
    data = render("smoke", "phase3")
    data["evaluate"].update(backend="vllm")
    params = parse_params(data)
    with pytest.raises(ev.EvaluateError, match="cannot import vllm .*served backend"):
        ev.load_backend(params, ev.session_of(params, "baseline"), base_dir, root / "models")


@pytest.mark.parametrize("config, rank", [({"r": 16}, 16), ({"r": 4}, 8), ({"r": 2, "rank_pattern": {"q_proj": 48}}, 64),
                                          ({"r": 300}, 320), ({"r": 1}, 1)])
def test_vllm_lora_rank_is_the_adapters_rounded_up(tmp_path, config, rank):
    (tmp_path / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert eval_backends.vllm_lora_rank(tmp_path) == rank


def test_vllm_lora_rank_out_of_range_names_the_file(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}), encoding="utf-8")
    with pytest.raises(ev.EvaluateError, match="adapter_config.json: LoRA rank 1024"):
        eval_backends.vllm_lora_rank(tmp_path)
    assert eval_backends.vllm_lora_rank(None) == 16


def test_evaluation_provenance_names_bitsandbytes_and_accelerate():
    assert "accelerate" in ev.eval_packages({"backend": "hf", "load_in_4bit": False})
    assert "bitsandbytes" in ev.eval_packages({"backend": "hf", "load_in_4bit": True})
    assert "vllm" in ev.eval_packages({"backend": "vllm", "load_in_4bit": False})


def test_provenance_records_optional_packages_only_where_they_decide_bytes():
    """A plain install (no bitsandbytes) and a dev install must write the same smoke provenance bytes."""
    from stages import train

    assert "bitsandbytes" not in ev.eval_packages({"backend": "hf", "load_in_4bit": False})
    assert "bitsandbytes" not in train.train_packages("peft-cpu")
    assert {"bitsandbytes", "unsloth", "unsloth_zoo"} <= set(train.train_packages("unsloth"))
    assert "bitsandbytes" in train.train_packages("peft-bnb")


# --------------------------------------------------------------------------- 7. LLINK's device


def test_llink_has_a_device_cuda_at_paper_scale():
    import contextlib

    import torch

    from stages.lib.llink.run import device_scope

    assert parse_params(render("smoke", "phase3")).llink.device == "cpu"
    assert parse_params(render("paper", "phase3")).llink.device == "cuda"
    assert isinstance(device_scope("cpu"), contextlib.nullcontext)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="llink.device is 'cuda' but torch sees no CUDA GPU"):
            device_scope("cuda")


def test_llink_stages_create_their_tensors_on_the_default_device():
    """What llink.device relies on: under torch.device(...) factories and modules land there, a CPU generator
    still drives randperm, and the backbones follow the default device (meta stands in for cuda here)."""
    import torch

    from stages.lib.llink.projector import TeacherQueue

    with torch.device("meta"):
        assert TeacherQueue(4, 3).buffer.device.type == "meta"
        generator = torch.Generator().manual_seed(0)
        assert torch.randperm(5, generator=generator, device="cpu").device.type == "cpu"
        assert torch.get_default_device().type == "meta"
    source = Path("stages/lib/llink/backbones.py").read_text(encoding="utf-8")
    assert source.count("model.to(torch.get_default_device())") == 2
