"""evaluate scores its own run's adapter: not another run's, not the base model.

Two tiny adapters (non-zero LoRA B) on a tiny random base, recorded as train@<run> records them."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from stages import evaluate as ev
from stages.base import build_model
from stages.lib.evaluation.adapters import check_loaded
from stages.lib.provenance import file_sha256, write_json
from test_evaluate import params_for, random_base, record_trained

A, B = "condition-2-ur-5k-seed42", "condition-2-ur-5k-seed123"
CONFIG = {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}


def small_grid(repo_root, **evaluate):
    """One template, English data and instructions, XNLI and SIB-200, two examples: 2 cells."""
    return params_for(repo_root, templates=["template1"], data_langs=["en"], instr_langs=["en"], n_samples=2, **evaluate)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, request):
    from peft import LoraConfig, get_peft_model

    repo_root = request.config.rootpath
    root = tmp_path_factory.mktemp("adapter-check")
    tokenizer = random_base(root, small_grid(repo_root), repo_root, CONFIG)
    for seed, run in ((1, A), (2, B)):
        model = build_model(CONFIG, len(tokenizer), 3, tokenizer)  # seeds torch itself
        torch.manual_seed(seed)
        lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
        get_peft_model(model, lora).save_pretrained(root / "models" / "tiny-aya-base" / run)
        record_trained(root, run)
    return root


def evaluate(root, params, session, name, **kwargs):
    out = root / "out" / name
    ev.evaluate_session(params, session, out=out, base_dir=root / "models" / "base", models_dir=root / "models",
                        resume_root=root / "resume" / name, progress=False, **kwargs)
    return out


def rows_of(out):
    """results key -> rows of every *_results_* file of one session's output folder."""
    entries = {}
    for path in sorted(out.glob("*_results_*.json")):
        entries.update({k: v for k, v in json.loads(path.read_text()).items() if isinstance(v, list)})
    return entries


def with_weights(params, session, weights):
    """The session's weights elsewhere. The params schema refuses that already (sessions are derived from the
    runs), so it is set past the schema: the stage's own check must catch a wrong folder however it came."""
    params = params.model_copy(deep=True)
    params.evaluate.sessions[session] = params.evaluate.sessions[session].model_copy(update={"weights": weights})
    return params


@pytest.fixture(scope="module")
def outputs(tiny, request):
    params = small_grid(request.config.rootpath)
    return {session: evaluate(tiny, params, session, session) for session in ("baseline", A)}


def test_a_session_scores_its_adapter_and_records_its_sha(tiny, outputs):
    recorded = json.loads((outputs[A] / "eval_config.json").read_text())["adapter"]
    weights = tiny / "models" / "tiny-aya-base" / A / "adapter_model.safetensors"
    assert recorded == {"path": f"tiny-aya-base/{A}", "sha256": file_sha256(weights)}
    assert recorded["sha256"] != file_sha256(tiny / "models" / "tiny-aya-base" / B / "adapter_model.safetensors")


def test_the_adapter_changes_what_the_session_answers(tiny, outputs, repo_root):
    """The same prompts, the base vs session A: log-likelihood scores differ everywhere, and some generations."""
    params = small_grid(repo_root)
    base = ev.load_backend(params, ev.session_of(params, "baseline"), tiny / "models" / "base", tiny / "models")
    adapted = ev.load_backend(params, ev.session_of(params, A), tiny / "models" / "base", tiny / "models")
    prompts = ["Premise: it rains.\nHypothesis: the street is wet.\nAnswer:", "Text: the vote is today.\nTopic:"]
    pairs = [(ids, base.tokenizer(" entailment", add_special_tokens=False)["input_ids"]) for ids in base.encode(prompts)]
    for mine, theirs in zip(adapted._scores(pairs), base._scores(pairs)):
        assert abs(mine - theirs) > 1e-3
    baseline, session = rows_of(outputs["baseline"]), rows_of(outputs[A])
    assert baseline.keys() == session.keys()
    raw = [(m["raw_output"], t["raw_output"]) for key in session for m, t in zip(session[key], baseline[key])]
    assert len(raw) == 4 and any(m != t for m, t in raw), "session A answers as the base model does"


def test_another_runs_adapter_is_refused(tiny, repo_root, tmp_path):
    params = with_weights(small_grid(repo_root), A, f"models/tiny-aya-base/{B}")
    found = file_sha256(tiny / "models" / "tiny-aya-base" / B / "adapter_model.safetensors")
    expected = file_sha256(tiny / "models" / "tiny-aya-base" / A / "adapter_model.safetensors")
    with pytest.raises(ev.EvaluateError, match=rf"^{A}: .*{B}.* sha256 is {found}, .*summary.json recorded {expected}"):
        evaluate(tiny, params, A, "swapped")
    assert not (tiny / "out" / "swapped").exists()


def test_another_runs_weights_file_in_this_runs_folder_is_refused(tiny, repo_root, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny / "models", models)
    shutil.copytree(tiny / "metrics", tmp_path / "metrics")
    shutil.copyfile(models / "tiny-aya-base" / B / "adapter_model.safetensors",
                    models / "tiny-aya-base" / A / "adapter_model.safetensors")
    with pytest.raises(ev.EvaluateError, match=rf"{A}: .* is not this run's adapter"):
        ev.evaluate_session(small_grid(repo_root), A, out=tmp_path / "out", base_dir=models / "base", models_dir=models,
                            resume_root=tmp_path / "resume", progress=False)


def test_a_session_pointed_at_the_base_or_at_no_record_is_refused(tiny, repo_root, tmp_path):
    with pytest.raises(ev.EvaluateError, match=rf"{A}: adapter .*base/adapter_model.safetensors does not exist"):
        evaluate(tiny, with_weights(small_grid(repo_root), A, "models/base"), A, "at-base")
    with pytest.raises(ev.EvaluateError, match=rf"{A}: no record of the adapter this run made.*summary.json"):
        evaluate(tiny, small_grid(repo_root), A, "unrecorded", train_metrics=tmp_path / "nowhere")


def test_an_imported_adapter_of_another_run_is_refused(tiny, repo_root, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny / "models", models)
    folder = models / "tiny-aya-base" / A
    write_json(folder / "import.json", {"run_id": B, "files_sha256": {"adapter_model.safetensors": "0" * 64}})
    with pytest.raises(ev.EvaluateError, match=rf"{A}: .* holds the imported adapter of run '{B}'"):
        ev.evaluate_session(small_grid(repo_root), A, out=tmp_path / "out", base_dir=models / "base", models_dir=models,
                            resume_root=tmp_path / "resume", progress=False)


def test_a_loaded_model_that_lacks_the_adapters_tensors_is_refused(tiny, repo_root):
    """PEFT only warns when checkpoint keys miss the model: the LoRA layers then keep B = 0, i.e. the base."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    params = small_grid(repo_root)
    backend = ev.load_backend(params, ev.session_of(params, A), tiny / "models" / "base", tiny / "models")
    weights = tiny / "models" / "tiny-aya-base" / A / "adapter_model.safetensors"
    check_loaded(backend.model, weights, A)  # what load_backend itself checked
    fresh = get_peft_model(build_model(CONFIG, len(backend.tokenizer), 3, backend.tokenizer),
                           LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"]))
    with pytest.raises(ev.EvaluateError, match=rf"{A}: .*LoRA tensors of the loaded model differ"):
        check_loaded(fresh, weights, A)
    other = tiny / "renamed.safetensors"
    from safetensors.torch import load_file

    save_file({k.replace("layers.0", "layers.9"): v for k, v in load_file(weights).items()}, other)
    with pytest.raises(ev.EvaluateError, match=rf"{A}: the loaded model has no place for"):
        check_loaded(backend.model, other, A)
