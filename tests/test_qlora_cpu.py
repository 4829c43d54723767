"""QLoRA on CPU (issue 20 section 2): the paper's method without Unsloth, ``peft-bnb`` on an NF4 base with
double quantisation, trained, saved, reloaded on the 4-bit base and evaluated, through the stages' own code."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("bitsandbytes")

from stages import evaluate as ev  # noqa: E402
from stages.base import build_model, train_tokenizer  # noqa: E402
from tools.configure import render  # noqa: E402
from stages.lib.tasks import load_benchmark  # noqa: E402
from stages.lib.params import parse_params  # noqa: E402
from stages.lib.pretrain import training_items  # noqa: E402
from stages.lib.provenance import package_versions  # noqa: E402
from stages.lib.tables import split_path, write_parquet  # noqa: E402
from stages.package import PACKAGED_SCHEMA  # noqa: E402
from stages.train import train_run  # noqa: E402

RUN = "condition-2-ur-5k-seed42"
CODES = ["def add(a, b):\n    return a + b\n", "for item in items:\n    print(item * 2)\n",
         "class Stack:\n    def push(self, x):\n        self.items.append(x)\n"]


def qlora_params(repo_root):
    data = render("smoke", "phase3")
    data["train"].update(backend="peft-bnb", load_in_4bit=True, max_steps=3, save_steps=None, max_seq_length=64)
    data["evaluate"].update(
        benchmarks=["sib200"], templates=["template1"], data_langs=["en"], instr_langs=["en"], n_samples=4,
        fixtures_dir=str(repo_root / "fixtures" / "benchmarks"), batch_size=4, load_in_4bit=True,
    )
    return parse_params(data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    repo_root = request.config.rootpath
    root = tmp_path_factory.mktemp("qlora")
    params = qlora_params(repo_root)
    e = params.evaluate
    items = training_items(e.benchmarks, e.data_langs, e.instr_langs, e.protocol, e.templates,
                           repo_root / e.fixtures_dir, e.anchor_lang)
    tokenizer = train_tokenizer([*(i.prompt + i.answer for i in items), *CODES], 400, 0, 512)
    # the smoke base's shape (base.yaml: width 64, 2 layers), a smaller vocabulary
    model = build_model({"hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 512}, len(tokenizer),
                        3, tokenizer)
    base_dir = root / "models" / "base"
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    run = params.runs[RUN]
    rows = [{"code": CODES[i % 3] * (1 + i % 2), "code_en": CODES[i % 3], "language": "ur", "file_path": f"{i}.py",
             "license": "MIT", "idx": i, "token_count": 0} for i in range(40)]
    write_parquet(split_path(root / "data" / "packaged" / run.dataset, "train"), rows, PACKAGED_SCHEMA)
    out = train_run(RUN, run, params.train, params.base, base_dir=base_dir, data_dir=root / "data" / "packaged",
                    models_dir=root / "models", logs_dir=None, metrics_dir=root / "metrics")
    return root, params, out


def test_peft_bnb_trains_an_nf4_adapter_on_cpu(trained):
    _, _, out = trained
    metrics = json.loads((out / "training_metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["steps"] == 3 and metrics["data"]["global_batch_size"] == 16
    losses = [entry["loss"] for entry in metrics["log_history"] if "loss" in entry]
    assert len(losses) == 3 and all(loss == loss and loss > 0 for loss in losses)
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == 16 and len(config["target_modules"]) == 7
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert len(lora_b) == 2 * 7 and any(tensor.abs().sum() > 0 for tensor in lora_b)  # B starts at 0: it trained
    recorded = json.loads((out / "run_config.json").read_text(encoding="utf-8"))
    assert recorded["packages"]["bitsandbytes"] == package_versions(["bitsandbytes"])["bitsandbytes"] != "not installed"


def test_the_adapter_reloads_on_the_4bit_base_and_evaluates(trained):
    import bitsandbytes as bnb

    root, params, out = trained
    session = ev.session_of(params, RUN)
    backend = ev.load_backend(params, session, root / "models" / "base", root / "models")
    layer = backend.model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(layer.base_layer, bnb.nn.Linear4bit) and layer.base_layer.weight.quant_state.nested  # double quant
    assert float(layer.lora_B["default"].weight.abs().sum()) > 0  # the trained adapter, not a fresh one
    timing = ev.evaluate_session(params, RUN, out=root / "eval", base_dir=root / "models" / "base",
                                 models_dir=root / "models", resume_root=root / "resume", progress=False, backend=backend,
                                 train_metrics=root / "metrics")
    assert timing["examples_run"] == 4
    record = json.loads((root / "eval" / "eval_config.json").read_text(encoding="utf-8"))
    assert record["params"]["load_in_4bit"] is True and record["adapter"]["path"] == f"tiny-aya-base/{RUN}"
    assert record["packages"]["bitsandbytes"] != "not installed" and record["packages"]["accelerate"] != "not installed"
    results = list((root / "eval").glob("*_results_*.json"))
    assert results and load_benchmark("sib200").name == "sib200"
    assert torch.cuda.is_available() or backend.device.type == "cpu"
