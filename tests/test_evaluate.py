"""evaluate: the original's cell grid, batched generation, log-likelihood, the published files, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from stages import evaluate as ev
from stages.lib.evaluation import backends as eval_backends, grid as eval_grid, resume, workers
from stages.base import build_model, train_tokenizer
from tools.configure import render
from stages.lib import results
from stages.lib.tasks import BenchmarkError, load_benchmark, load_examples
from stages.lib.params import parse_params
from stages.lib.pretrain import pretrain, training_items

RUN = "condition-2-ur-5k-seed42"


def params_for(repo_root, **evaluate):
    data = render("smoke", "phase3")
    data["evaluate"].update(
        benchmarks=["xnli", "sib200"], templates=["template1", "template2"], data_langs=["en", "ur"],
        instr_langs=["en", "zh", "ur"], n_samples=3, fixtures_dir=str(repo_root / "fixtures" / "benchmarks"),
        batch_size=4,
    )
    data["evaluate"].update(evaluate)
    return parse_params(data)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, request):
    """A tiny base (tokenizer on fixture prompts, a few pre-training steps) and one adapter."""
    repo_root = request.config.rootpath
    root = tmp_path_factory.mktemp("evaluate")
    params = params_for(repo_root)
    e = params.evaluate
    items = training_items(e.benchmarks, e.data_langs, e.instr_langs, e.protocol, e.templates, repo_root / e.fixtures_dir,
                           e.anchor_lang)
    tokenizer = train_tokenizer((i.prompt + i.answer for i in items), 400, 0, 512)
    model = build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}, len(tokenizer), 3,
                        tokenizer)
    losses = pretrain(model, tokenizer, items, steps=60, batch_size=8, learning_rate=2e-2, max_length=256, seed=0)
    base_dir = root / "models" / "base"
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    peft_model = get_peft_model(build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512},
                                            len(tokenizer), 3, tokenizer),
                                LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(root / "models" / "tiny-aya-base" / RUN)
    record_trained(root, RUN)
    return root, params, losses


def random_base(root, params, repo_root, config=None):
    """An untrained tiny base in root/models/base, its tokenizer trained on the grid's prompts; returns the tokenizer."""
    e = params.evaluate
    items = training_items(e.benchmarks, e.data_langs, e.instr_langs, e.protocol, e.templates, repo_root / e.fixtures_dir,
                           e.anchor_lang)
    tokenizer = train_tokenizer((i.prompt + i.answer for i in items), 400, 0, 512)
    config = config or {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}
    build_model(config, len(tokenizer), 3, tokenizer).save_pretrained(root / "models" / "base")
    tokenizer.save_pretrained(root / "models" / "base")
    return tokenizer


def record_trained(root, run_id, folder=None):
    """What train@<run_id> records beside the adapter it saved in models/tiny-aya-base/<folder or run_id>:
    metrics/train/<run_id>/summary.json with the weights' sha256 (the evaluate stage checks it)."""
    from stages.lib.provenance import write_json
    from stages.lib.training.records import run_summary

    out = root / "models" / "tiny-aya-base" / (folder or run_id)
    summary = run_summary(run_id, out, root / "models", {"train_loss": None}, {"steps": 0, "rows": 0, "tokens": 0})
    write_json(root / "metrics" / "train" / run_id / "summary.json", summary)


def run_session(workspace, session, out_name, **kwargs):
    root, params, _ = workspace
    out = root / out_name
    timing = ev.evaluate_session(params, session, out=out, base_dir=root / "models" / "base", models_dir=root / "models",
                                 resume_root=root / "resume", progress=False, **kwargs)
    return out, timing


@pytest.fixture(scope="module")
def baseline(workspace):
    return run_session(workspace, "baseline", "baseline-a")


def test_pretraining_lowers_the_loss(workspace):
    _, _, losses = workspace
    assert len(losses) == 60 and sum(losses[-5:]) < sum(losses[:5])


def test_the_original_cell_grid():
    data = render("smoke", "phase3")
    params = parse_params(data)
    grid = {sid: eval_grid.cells(ev.session_of(params, sid), params.evaluate, params.evaluate.templates) for sid in params.evaluate.sessions}
    assert len(grid["baseline"]) == 128
    assert len(grid["condition-1-en-5k-seed42"]) == 128
    assert len(grid["condition-2-zh-5k-seed42"]) == 64
    assert {c.instr_lang for c in grid["condition-5-ur-5k-c4ai-aya-expanse-32b-seed42"]} == {"en", "ur"}
    assert sum(len(cells) for cells in grid.values()) == 1664  # evaluation-protocol.md 1.1
    first = [c.key for c in grid["condition-2-zh-5k-seed42"][:6]]
    assert first == [  # template -> data -> instruction -> benchmark
        "template1_xnli_data=en_instr=en", "template1_csqa_data=en_instr=en", "template1_sib200_data=en_instr=en",
        "template1_belebele_data=en_instr=en", "template1_xnli_data=en_instr=zh", "template1_csqa_data=en_instr=zh",
    ]


def test_published_files_and_schema(baseline):
    out, timing = baseline
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([
        *(f"baseline_seednone_smoke3_{kind}_{t}.json" for kind in ("results", "summary", "summary_loglik")
          for t in ("template1", "template2")),
        "eval_config.json", "provenance.json",
    ])
    body = json.loads((out / "baseline_seednone_smoke3_results_template1.json").read_text())
    keys = [k for k in body if k not in ("summary", "parse_failure_rates")]
    assert len(keys) == 2 * 3 * 2  # data en/ur x instr en/zh/ur x xnli/sib200
    assert keys[:2] == ["template1_xnli_data=en_instr=en", "template1_sib200_data=en_instr=en"]
    row = body["template1_xnli_data=ur_instr=zh"][0]
    assert list(row) == ["premise", "hypothesis", "template", "instruction_lang", "raw_output", "pred", "gold", "correct"]
    assert row["instruction_lang"] == "zh" and row["template"] == "template1"
    assert list(body["template1_sib200_data=en_instr=en"][0])[0] == "text"
    for key in keys:
        rows = body[key]
        assert len(rows) == 3
        assert body["summary"][f"{key}_acc"] == sum(r["correct"] for r in rows) / 3
        assert body["parse_failure_rates"][key] == sum(r["pred"] is None for r in rows) / 3
        assert all(r["correct"] == (r["pred"] is not None and r["pred"] == r["gold"]) for r in rows)
    summary = json.loads((out / "baseline_seednone_smoke3_summary_template1.json").read_text())
    assert summary == {"summary": body["summary"], "parse_failure_rates": body["parse_failure_rates"]}
    assert timing["cells"] == 24 and timing["cells_run"] == 24


def test_strict_extractor_scores_the_raw_outputs(baseline):
    from stages.lib.extractors import get_extractor

    body = json.loads((baseline[0] / "baseline_seednone_smoke3_results_template2.json").read_text())
    for key, rows in body.items():
        if key in ("summary", "parse_failure_rates"):
            continue
        extractor = get_extractor("strict", results.parse_cell_key(key).benchmark)
        assert all(r["pred"] == extractor(r["raw_output"]) for r in rows)


def test_loglik_summary_matches_its_predictions(baseline):
    body = json.loads((baseline[0] / "baseline_seednone_smoke3_summary_loglik_template1.json").read_text())
    results_body = json.loads((baseline[0] / "baseline_seednone_smoke3_results_template1.json").read_text())
    choices = body["loglik_metadata"]["choices"]
    for key, preds in body["predictions"].items():
        bench = results.parse_cell_key(key).benchmark
        assert set(preds) <= set(choices[bench])
        golds = [r["gold"] for r in results_body[key]]
        assert body["summary"][f"{key}_correct"] == sum(p == g for p, g in zip(preds, golds))
        assert body["summary"][f"{key}_acc"] == body["summary"][f"{key}_correct"] / len(golds)


def test_same_inputs_same_bytes(workspace, baseline):
    again, _ = run_session(workspace, "baseline", "baseline-b")
    for path in baseline[0].iterdir():
        if path.name != "provenance.json":
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def _backend(workspace):
    root, params, _ = workspace
    return ev.load_backend(params, ev.session_of(params, "baseline"), root / "models" / "base", root / "models")


def test_loglik_equals_a_naive_one_sequence_computation(workspace, repo_root):
    backend = _backend(workspace)
    benchmark = load_benchmark("sib200")
    examples = load_examples(benchmark, "ur", fixtures_dir=repo_root / "fixtures" / "benchmarks", n_samples=3)
    prompts = [benchmark.render("phase3", "template1", "ur", e.fields) for e in examples]
    model, tokenizer = backend.model, backend.tokenizer
    expected = []
    for prompt in prompts:
        ctx = tokenizer(prompt)["input_ids"]
        scores = []
        for choice in benchmark.choices:
            cont = tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
            scores.append(sum(float(logits[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
        expected.append(benchmark.choices[scores.index(max(scores))])
    assert backend.choose(prompts, benchmark.choices) == expected


def test_generation_prefill_gives_choose_its_own_forwards_values(workspace, repo_root, monkeypatch):
    """choose() after generate() over the same prompts takes the first tokens' log-probabilities from
    generation's first step: its own forward's values to float32 rounding (MKL's COMPATIBLE branch rounds
    a product by the batch it is in), the same bits on every call, and no second forward over the prompts."""
    benchmark = load_benchmark("xnli")
    examples = load_examples(benchmark, "en", fixtures_dir=repo_root / "fixtures" / "benchmarks", n_samples=6)
    prompts = [benchmark.render("phase3", "template1", "en", e.fields) for e in examples]
    prompts.append(prompts[0])  # a repeated prompt, as a cell may hold
    backend = _backend(workspace)
    pairs = [(ctx, backend.tokenizer(" " + c, add_special_tokens=False)["input_ids"])
             for ctx in backend.encode(prompts) for c in benchmark.choices]
    fresh = backend._first_token_logprobs(pairs)  # nothing kept yet: its own forward
    backend.generate(prompts, 3)
    assert len(backend.prefill) == len(set(map(tuple, backend.encode(prompts))))
    forwards = []
    original = backend._forward_last
    monkeypatch.setattr(backend, "_forward_last", lambda batch, keep: forwards.append(len(batch)) or original(batch, keep))
    kept = backend._first_token_logprobs(pairs)
    assert kept == pytest.approx(fresh, abs=1e-5) and kept == backend._first_token_logprobs(pairs)
    assert forwards == []
    backend.generate(prompts[:1], 3)  # a later cell: the memo holds only the last call's prompts
    backend._first_token_logprobs(pairs)
    assert sum(forwards) == len(set(map(tuple, backend.encode(prompts)))) - 1  # all but the one kept


def test_shared_context_scores_equal_one_sequence_per_choice(workspace):
    """One forward per distinct context for first tokens, one per longer continuation for the rest:
    the same sums as a forward over each context + continuation alone."""
    backend = _backend(workspace)
    model, tokenizer = backend.model, backend.tokenizer
    contexts = [tokenizer(text)["input_ids"] for text in ("Question: 2 + 2 =", "Premise: it rains.\nAnswer:", "x")]
    continuations = [tokenizer(" " + text, add_special_tokens=False)["input_ids"]
                     for text in ("A", "science/technology", "entailment", "four hundred and two")]
    assert {len(c) for c in continuations} != {1}  # single- and multi-token continuations both
    pairs = [(ctx, cont) for ctx in contexts for cont in continuations] + [(contexts[0], continuations[1])]
    naive = []
    for ctx, cont in pairs:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
        naive.append(sum(float(logits[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
    assert backend._scores(pairs) == pytest.approx(naive, abs=1e-4)


def test_batched_generation_equals_one_at_a_time(workspace, repo_root):
    # a randomly initialised model: it never stops early, so every row generates all 10 tokens
    pretrained = _backend(workspace)
    model = build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512},
                        len(pretrained.tokenizer), 5, pretrained.tokenizer)
    backend = eval_backends.HFBackend(model, pretrained.tokenizer, workspace[1].evaluate)
    benchmark = load_benchmark("xnli")
    examples = load_examples(benchmark, "en", fixtures_dir=repo_root / "fixtures" / "benchmarks")
    prompts = [benchmark.render("phase3", "template2", "en", e.fields) for e in examples]
    batched = backend.generate(prompts, 10)
    single = [backend.generate([p], 10)[0] for p in prompts]
    assert batched == single
    assert all(batched), "a random model says something on every row"


def test_prompts_batched_by_length_come_back_in_their_own_order(workspace, repo_root):
    """generate() batches a block's prompts by token count: prompts of four benchmarks, shuffled, in
    batches of 4, each get the output they get alone (a random model: every prompt says something else)."""
    pretrained = _backend(workspace)
    model = build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512},
                        len(pretrained.tokenizer), 5, pretrained.tokenizer)
    backend = eval_backends.HFBackend(model, pretrained.tokenizer, workspace[1].evaluate)
    prompts = []
    for name in ("xnli", "belebele", "sib200", "csqa"):
        benchmark = load_benchmark(name)
        examples = load_examples(benchmark, "en", fixtures_dir=repo_root / "fixtures" / "benchmarks", n_samples=3)
        prompts += [benchmark.render("phase3", "template1", "en", e.fields) for e in examples]
    import random

    random.Random(3).shuffle(prompts)
    lengths = [len(ids) for ids in backend.encode(prompts)]
    assert lengths != sorted(lengths) and max(lengths) > 1.5 * min(lengths)
    assert backend.generate(prompts, 4) == [backend.generate([p], 4)[0] for p in prompts]


def test_adapter_session_loads_the_seed_card_way(workspace, baseline):
    out, timing = run_session(workspace, RUN, "adapter")
    assert timing["cells"] == 2 * 2 * 2 * 2  # 2 templates x data en/ur x instr en/ur x 2 benchmarks
    config = json.loads((out / "eval_config.json").read_text())
    assert config["adapter"]["path"] == f"tiny-aya-base/{RUN}"
    names = {p.name for p in out.iterdir()}
    assert "condition-2-ur-5k_seed42_smoke3_results_template1.json" in names
    backend = ev.load_backend(workspace[1], ev.session_of(workspace[1], RUN), workspace[0] / "models" / "base",
                              workspace[0] / "models")
    assert type(backend.model).__name__.startswith("PeftModel")
    ids = torch.tensor([backend.encode(["Premise: a\nHypothesis: b\nAnswer:"])[0]])
    with torch.no_grad():
        with_adapter = backend.model(input_ids=ids).logits
        with backend.model.disable_adapter():
            without = backend.model(input_ids=ids).logits
    assert not torch.allclose(with_adapter, without), "the adapter's weights take part"


class Dies:
    """Wraps a backend and dies after ``blocks`` generate calls (one per block of cells), like a killed process."""

    def __init__(self, backend, blocks):
        self.backend, self.left, self.calls = backend, blocks, 0

    def generate(self, prompts, max_new_tokens):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        self.calls += 1
        return self.backend.generate(prompts, max_new_tokens)

    def choose(self, prompts, choices):
        return self.backend.choose(prompts, choices)


# the test grid's blocks (stages/lib/evaluation/blocks.py): 3-row cells, batches of 4, so a block holds
# 10 cells; per template 12 cells, blocks of 10 and 2
BLOCKS = [10, 2, 10, 2]


def test_a_killed_evaluation_resumes_at_the_first_unfinished_block(workspace, baseline):
    root = workspace[0]
    shutil.rmtree(root / "resume", ignore_errors=True)
    dying = Dies(_backend(workspace), 1)
    with pytest.raises(KeyboardInterrupt):
        run_session(workspace, "baseline", "resumed", backend=dying)
    assert not (root / "resumed").exists()
    counting = Dies(_backend(workspace), 10**6)
    out, timing = run_session(workspace, "baseline", "resumed", backend=counting)
    assert counting.calls == len(BLOCKS) - 1 and timing["cells_run"] == 24 - BLOCKS[0]
    for path in baseline[0].iterdir():
        if path.name != "provenance.json":
            assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    assert not any((root / "resume").rglob("*.json")), "the resume folder is removed after success"


def test_a_run_killed_inside_a_block_generates_that_block_again_whole(workspace, baseline, monkeypatch):
    """Killed after 4 of the first block's 10 cells were written: the rerun generates the first block
    again with all its prompts (the batches of an uninterrupted run), keeps the 4 cells, writes the
    other 20, and the outputs are the uninterrupted run's bytes."""
    root = workspace[0]
    shutil.rmtree(root / "resume", ignore_errors=True)
    written = []
    real_write = ev.results.write_body

    def dies_after_four(path, body):
        if path.parent.parent.parent == root / "resume":  # a cell (resume/<session>/<fingerprint>/<cell>.json)
            if len(written) == 4:
                raise KeyboardInterrupt
            written.append(path.name)
        return real_write(path, body)

    monkeypatch.setattr(ev.results, "write_body", dies_after_four)
    with pytest.raises(KeyboardInterrupt):
        run_session(workspace, "baseline", "inside-a-block")
    monkeypatch.setattr(ev.results, "write_body", real_write)
    assert len(list((root / "resume").rglob("*.json"))) == 4
    counting = Dies(_backend(workspace), 10**6)
    out, timing = run_session(workspace, "baseline", "inside-a-block", backend=counting)
    assert counting.calls == len(BLOCKS) and timing["cells_run"] == 24 - 4
    _outputs_equal(baseline[0], out)


def test_changed_params_never_reuse_finished_cells(workspace):
    root, params, _ = workspace
    session = ev.session_of(params, "baseline")
    a = ev.identity(params, session, root / "models" / "base", root / "models", None)
    other = params_for(root.parent, max_new_tokens={"default": 5})
    b = ev.identity(other, ev.session_of(other, "baseline"), root / "models" / "base", root / "models", None)
    assert resume.fingerprint(a) != resume.fingerprint(b)


def test_missing_benchmark_file_is_named_before_any_model_loads(workspace, tmp_path, repo_root):
    root, _, _ = workspace
    fixtures = tmp_path / "fixtures"
    shutil.copytree(repo_root / "fixtures" / "benchmarks", fixtures)
    (fixtures / "mteb/sib200/default/test-00000-of-00001.parquet").unlink()
    params = params_for(repo_root, fixtures_dir=str(fixtures))
    with pytest.raises(BenchmarkError, match=r"sib200 \[en\]: benchmark file .* does not exist"):
        ev.evaluate_session(params, "baseline", out=tmp_path / "out", base_dir=root / "models" / "base",
                            models_dir=root / "models", resume_root=tmp_path / "resume", backend=object(), progress=False)


def test_missing_adapter_is_named(workspace, tmp_path, repo_root):
    root, params, _ = workspace
    with pytest.raises(ev.EvaluateError, match=r"condition-2-zh-5k-seed42: adapter .* does not exist"):
        ev.evaluate_session(params, "condition-2-zh-5k-seed42", out=tmp_path / "out", base_dir=root / "models" / "base",
                            models_dir=root / "models", resume_root=tmp_path / "resume", progress=False)


def test_unknown_session_is_named(workspace):
    _, params, _ = workspace
    with pytest.raises(ev.EvaluateError, match="no 'condition-9'"):
        ev.session_of(params, "condition-9")


def phase2_params(repo_root, **evaluate):
    data = render("smoke", "phase2")
    data["evaluate"].update(n_samples=2, fixtures_dir=str(repo_root / "fixtures" / "benchmarks"), **evaluate)
    return parse_params(data)


def test_phase2_sessions_and_grid(repo_root):
    params = phase2_params(repo_root)
    session = ev.session_of(params, "condition-2-zh-5k")
    assert (session.condition, session.seed, session.adapter) == ("condition-2-zh-5k", 42, "condition-2-zh-5k")
    grid = ev.jobs(session, params.evaluate)
    assert len(grid) == 2 * 3 * 3  # English and native prompt x MGSM/XNLI/X-CSQA x zh/es/ur
    native = [j for j in grid if j.group == "native"]
    assert all(j.instr_lang == j.data_lang for j in native)
    assert [j.cell_key for j in grid[:4]] == ["mgsm_zh", "mgsm_es", "mgsm_ur", "xnli_zh"]
    assert params.evaluate.sessions["condition-2-zh-5k"].out == "metrics/eval/phase2/conditions/condition-2-zh-5k/results"


def test_phase2_files_in_the_published_schema(workspace, repo_root, tmp_path):
    root = workspace[0]
    params = phase2_params(repo_root)
    ev.evaluate_session(params, "baseline", out=tmp_path / "out", base_dir=root / "models" / "base",
                        models_dir=root / "models", resume_root=tmp_path / "resume", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").glob("*_results.json")) == [
        "english_prompt_results.json", "native_prompt_results.json"]
    body = json.loads((tmp_path / "out" / "native_prompt_results.json").read_text())
    assert list(body["summary"]) == [f"{b}_{l}_acc" for b in ("mgsm", "xnli", "csqa") for l in ("zh", "es", "ur")]
    assert list(body["mgsm_ur"][0]) == ["question", "raw_output", "pred", "gold", "correct"]
    assert list(body["xnli_zh"][0]) == ["premise", "hypothesis", "raw_output", "pred", "gold", "correct"]
    assert body["mgsm_es"][0]["gold"].lstrip("-").isdigit()
    for key in ("mgsm_zh", "xnli_es", "csqa_ur"):
        assert body["summary"][f"{key}_acc"] == sum(r["correct"] for r in body[key]) / len(body[key])


def test_phase2_empty_xnli_outputs_count_as_wrong_unless_the_original_quirk_is_asked_for():
    rows = [{"raw_output": "", "pred": None, "gold": "neutral", "correct": False},
            {"raw_output": "neutral", "pred": "neutral", "gold": "neutral", "correct": True}]
    assert ev.phase2_body({"xnli_zh": rows}, skip_empty_xnli=False)["summary"]["xnli_zh_acc"] == 0.5
    assert ev.phase2_body({"xnli_zh": rows}, skip_empty_xnli=True)["summary"]["xnli_zh_acc"] == 1.0
    assert ev.phase2_body({"csqa_zh": rows}, skip_empty_xnli=True)["summary"]["csqa_zh_acc"] == 0.5


# --------------------------------------------------------------------------- worker processes


def test_workers_share_out_every_cell_once(repo_root):
    params = params_for(repo_root, processes=3)
    grid = ev.jobs(ev.session_of(params, "baseline"), params.evaluate)
    packed = ev.blocks(grid, {job.key: 3 for job in grid}, {job.key: 10 for job in grid}, params.evaluate.batch_size)
    assert [len(block) for block in packed] == BLOCKS
    shares = [ev.worker_blocks(packed, params.evaluate, index) for index in range(3)]
    assert sorted(job.key for share in shares for block in share for job in block) == sorted(job.key for job in grid)
    assert all(shares), "round-robin by block gives every worker cells"
    by_template = params_for(repo_root, processes=2, split_by="template").evaluate
    assert [{job.wording for block in ev.worker_blocks(packed, by_template, index) for job in block}
            for index in range(2)] == [{"template1"}, {"template2"}]  # the original: one template per GPU


def _outputs_equal(one, other):
    names = sorted(path.name for path in one.iterdir())
    assert names == sorted(path.name for path in other.iterdir())
    for name in names:
        if name != "provenance.json":
            assert (other / name).read_bytes() == (one / name).read_bytes(), name


def test_two_worker_processes_write_the_one_process_bytes(workspace, baseline, repo_root):
    """One template wording per worker, as the original ran one per GPU (round-robin by cell: the next test)."""
    root, _, _ = workspace
    params = params_for(repo_root, processes=2, split_by="template")
    out = root / "two-workers"
    timing = ev.evaluate_session(params, "baseline", out=out, base_dir=root / "models" / "base",
                                 models_dir=root / "models", resume_root=root / "resume-workers", progress=False)
    assert timing["cells_run"] == timing["cells"] == 24
    _outputs_equal(baseline[0], out)  # eval_config.json too: the process count decides no byte
    assert not any((root / "resume-workers").rglob("*.json")), "the resume folder is removed after success"


def test_a_failed_worker_loses_no_finished_cell(workspace, baseline, repo_root, monkeypatch):
    import subprocess
    import sys

    root, _, _ = workspace
    params = params_for(repo_root, processes=2)
    real_popen = subprocess.Popen

    def second_worker_dies(command, **kwargs):
        if "1/2" in command:
            command = [sys.executable, "-c", "import sys; sys.exit(3)"]
        return real_popen(command, **kwargs)

    kwargs = dict(out=root / "worker-died", base_dir=root / "models" / "base", models_dir=root / "models",
                  resume_root=root / "resume-died", progress=False)
    monkeypatch.setattr(workers.subprocess, "Popen", second_worker_dies)
    with pytest.raises(ev.EvaluateError, match=r"worker 1/2 \(exit 3\) failed.*run the stage again to resume"):
        ev.evaluate_session(params, "baseline", **kwargs)
    assert not (root / "worker-died").exists()
    kept = [path for path in (root / "resume-died").rglob("*") if path.suffix == ".json"]
    assert len(kept) == BLOCKS[0] + BLOCKS[2], "worker 0's cells (blocks 0 and 2) are kept"
    monkeypatch.setattr(workers.subprocess, "Popen", real_popen)
    timing = ev.evaluate_session(params, "baseline", **kwargs)
    assert timing["cells_run"] == BLOCKS[1] + BLOCKS[3], "only worker 1's share is scored again"
    _outputs_equal(baseline[0], root / "worker-died")
