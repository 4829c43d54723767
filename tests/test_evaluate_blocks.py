"""evaluate's generation across cells (stages/lib/evaluation/blocks.py): which cells are generated
together, that every output goes back to its own cell and row, and that resuming or splitting over
workers generates every prompt in the batch an uninterrupted run does."""

from __future__ import annotations

import random

import pytest

from stages.lib.evaluation import EvaluateError
from stages.lib.evaluation.blocks import BLOCK_BATCHES, blocks, generate_cells
from stages.lib.evaluation.grid import Job
from stages.lib.evaluation.workers import worker_blocks
from stages.lib.params import parse_params
from tools.configure import render


def job(key, group="template1", wording=None):
    return Job(key, wording or group, "xnli", "en", "en", group, key)


class Echo:
    """A backend whose output is a function of its prompt alone; it records every batch it was given."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, max_new_tokens):
        self.calls.append((list(prompts), max_new_tokens))
        return [f"out:{prompt}" for prompt in prompts]


def test_blocks_pack_consecutive_cells_of_one_group_and_token_count():
    room = BLOCK_BATCHES * 4
    grid = [job("a"), job("b"), job("c"), job("d", "template2"), job("e", "template2"), job("f", "template2"),
            job("g", "template2")]
    sizes = {"a": 3, "b": room - 3, "c": 1, "d": room + 5, "e": 2, "f": 2, "g": 2}
    tokens = {"a": 10, "b": 10, "c": 10, "d": 10, "e": 10, "f": 80, "g": 80}
    packed = blocks(grid, sizes, tokens, batch_size=4)
    assert [[j.key for j in block] for block in packed] == [
        ["a", "b"],  # exactly fills the room
        ["c"],  # the next group starts a block
        ["d"],  # larger than the room: a block of its own (a paper-sized cell)
        ["e"],  # another max_new_tokens starts a block
        ["f", "g"],
    ]
    assert [j for block in packed for j in block] == grid, "every cell once, in the grid's order"


def test_blocks_depend_on_the_grid_alone():
    grid = [job(f"c{i}") for i in range(40)]
    sizes = {j.key: 1 + i % 7 for i, j in enumerate(grid)}
    tokens = {j.key: 10 for j in grid}
    assert blocks(grid, sizes, tokens, 8) == blocks(list(grid), dict(reversed(sizes.items())), tokens, 8)
    assert all(sum(sizes[j.key] for j in block) <= BLOCK_BATCHES * 8 for block in blocks(grid, sizes, tokens, 8))


def test_each_cell_gets_its_own_outputs_back_whatever_its_size():
    cells = [["p0", "p1", "p2"], [], ["q0"], [f"r{i}" for i in range(11)]]
    backend = Echo()
    outputs = generate_cells(backend, cells, 10)
    assert outputs == [[f"out:{p}" for p in cell] for cell in cells]
    assert backend.calls == [(["p0", "p1", "p2", "q0"] + cells[3], 10)], "one generate over the whole block"


def test_split_back_is_invariant_to_the_order_of_the_cells():
    rng = random.Random(0)
    cells = [[f"cell{c}-row{r}" for r in range(rng.randint(1, 9))] for c in range(12)]
    reference = dict(zip(map(tuple, cells), generate_cells(Echo(), cells, 10)))
    for _ in range(5):
        shuffled = rng.sample(cells, len(cells))
        for cell, outputs in zip(shuffled, generate_cells(Echo(), shuffled, 10)):
            assert outputs == reference[tuple(cell)]


def test_a_backend_that_loses_outputs_is_named():
    class Short(Echo):
        def generate(self, prompts, max_new_tokens):
            return super().generate(prompts, max_new_tokens)[:-1]

    with pytest.raises(EvaluateError, match="3 outputs for 4 prompts"):
        generate_cells(Short(), [["a", "b"], ["c", "d"]], 10)


def test_workers_get_whole_blocks(repo_root):
    data = render("smoke", "phase3")
    data["evaluate"].update(processes=3)
    evaluate = parse_params(data).evaluate
    grid = [job(f"c{i}", group=f"template{1 + i // 10}") for i in range(20)]
    packed = blocks(grid, {j.key: 5 for j in grid}, {j.key: 10 for j in grid}, 2)  # room 16: 3 cells a block
    shares = [worker_blocks(packed, evaluate, index) for index in range(3)]
    keys = lambda blocks_: sorted(tuple(j.key for j in block) for block in blocks_)  # noqa: E731
    assert keys(b for share in shares for b in share) == keys(packed), "every block once, never split"
    assert all(share for share in shares)
    by_template = evaluate.model_copy(update={"processes": 2, "split_by": "template"})
    assert [{b[0].wording for b in worker_blocks(packed, by_template, i)} for i in range(2)] == [
        {"template1"}, {"template2"}]


class Fake(Echo):
    """A session's backend without a model: the output names its prompt; the first choice always."""

    def choose(self, prompts, choices):
        return [choices[0] for _ in prompts]


def test_every_row_of_a_session_gets_its_own_prompts_output(tmp_path, repo_root):
    from stages import evaluate as ev
    from test_evaluate import params_for

    base = tmp_path / "base"
    base.mkdir()
    (base / "model.safetensors").write_bytes(b"not read: the backend is given")
    (base / "tokenizer.json").write_text("{}")
    params = params_for(repo_root, benchmarks=["xnli", "sib200", "csqa"], n_samples=None, batch_size=8)
    backend = Fake()
    out = tmp_path / "out"
    timing = ev.evaluate_session(params, "baseline", out=out, base_dir=base, models_dir=tmp_path / "models",
                                 resume_root=tmp_path / "resume", backend=backend, progress=False)
    grid = ev.jobs(ev.session_of(params, "baseline"), params.evaluate)
    assert timing["cells_run"] == len(grid) == 36
    assert len(backend.calls) < len(grid) and max(len(p) for p, _ in backend.calls) > 11, "batches span cells"
    benchmarks = {name: ev.find_benchmark(name, []) for name in params.evaluate.benchmarks}
    import json

    for wording in params.evaluate.templates:
        body = json.loads(next(out.glob(f"*_results_{wording}.json")).read_text())
        for job in (j for j in grid if j.wording == wording):
            examples = ev.load_examples(benchmarks[job.benchmark], job.data_lang,
                                        fixtures_dir=repo_root / "fixtures" / "benchmarks", split="eval")
            prompts = ev.cell_prompts(benchmarks[job.benchmark], job, examples, params.evaluate)
            assert [row["raw_output"] for row in body[job.cell_key]] == [f"out:{p}" for p in prompts], job.key
