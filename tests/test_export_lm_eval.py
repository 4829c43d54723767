"""The lm-eval export: lm-eval's own code reads the files, and the task YAMLs render the study's prompts."""

from __future__ import annotations

import json

import pytest
import yaml

from stages import export_lm_eval
from stages.lib import lm_eval_format as fmt
from stages.lib.tasks import load_benchmark

BENCHMARKS = ("xnli", "csqa", "sib200", "belebele")


def rows(n: int) -> list[dict]:
    return [{"raw_output": f"answer {i}", "pred": "A" if i % 2 else None, "gold": "A", "correct": bool(i % 2)}
            for i in range(n)]




def test_stderr_is_lm_evals_mean_stderr():
    assert fmt.mean_stderr([1.0, 0.0, 1.0, 0.0]) == pytest.approx((1 / 3) ** 0.5 / 2)
    assert fmt.mean_stderr([1.0]) == "N/A"


def test_results_and_samples_read_with_lm_evals_own_code(tmp_path):
    utils = pytest.importorskip("lm_eval.utils")
    task = fmt.task_name("xnli", "template1", "en", "zh")
    samples = [fmt.sample(i, {"premise": "p", "gold": "A"}, f"prompt {i}", row, 10, "A" if i < 3 else "B")
               for i, row in enumerate(rows(4))]
    body = fmt.results_file({task: samples}, {task: {"task": task}}, {"model": "hf"}, "abc", "baseline")
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / f"results_{fmt.DATE_ID}.json").write_text(json.dumps(body))
    (folder / f"samples_{task}_{fmt.DATE_ID}.jsonl").write_text(fmt.jsonl(samples))
    names = sorted(str(p) for p in folder.iterdir())
    assert utils.get_results_filenames(names) == [str(folder / f"results_{fmt.DATE_ID}.json")]
    [sample_file] = utils.get_sample_results_filenames(names)
    assert utils.get_file_task_name(sample_file.rsplit("/", 1)[1]) == task
    assert utils.get_file_datetime(sample_file) == fmt.DATE_ID
    assert utils.get_latest_filename(names) in names
    read = json.loads((folder / f"results_{fmt.DATE_ID}.json").read_text())
    assert read["results"][task]["acc,none"] == 0.5
    assert read["results"][task]["acc_loglik,none"] == 0.75  # picks A, A, A, B against gold A
    assert read["results"][task]["acc_stderr,none"] == pytest.approx(fmt.mean_stderr([0, 1, 0, 1]))
    assert read["n-samples"][task] == {"original": 4, "effective": 4}
    lines = [json.loads(line) for line in open(sample_file, encoding="utf-8")]
    assert [s["doc_id"] for s in lines] == [0, 1, 2, 3]
    assert lines[0]["arguments"]["gen_args_0"]["arg_0"] == "prompt 0"
    assert lines[0]["resps"] == [["answer 0"]] and lines[0]["filtered_resps"] == [""]
    assert lines[1]["prompt_hash"] == utils.hash_string("prompt 1")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_task_yaml_renders_the_study_prompt_byte_exact(name):
    utils = pytest.importorskip("lm_eval.utils")
    benchmark = load_benchmark(name)
    definition = export_lm_eval.raw_definition(name)
    values = {field: f"<{field} ü {{x}}>" for field in benchmark.fields}
    doc: dict = {}
    for field, column in benchmark.fields.items():  # the dataset row those fields come from
        parts, node = column.split("."), doc
        for part, following in zip(parts, parts[1:] + [None]):
            key = int(part) if part.isdigit() else part
            if following is None:
                if isinstance(node, list):
                    node.extend([None] * (key + 1 - len(node)))
                node[key] = values[field]
            else:
                empty = [] if following.isdigit() else {}
                if isinstance(node, list):
                    node.extend([None] * (key + 1 - len(node)))
                    node[key] = node[key] if node[key] is not None else empty
                else:
                    node.setdefault(key, empty)
                node = node[key]
    for template in definition["templates"]["phase3"]:
        for instr in benchmark.langs:
            task = yaml.safe_load(fmt.dump_yaml(fmt.task_yaml(definition, "phase3", template, "en", instr), "x"))
            assert utils.apply_template(task["doc_to_text"], doc) == benchmark.render("phase3", template, instr, values)


@pytest.mark.parametrize("name, doc, gold", [("xnli", {"label": 2}, "contradiction"), ("belebele", {"correct_answer_num": "3"}, "C"),
                                             ("sib200", {"category": "Travel"}, "travel"), ("csqa", {"answerKey": "b"}, "B")])
def test_task_yaml_target_is_the_study_gold(name, doc, gold):
    utils = pytest.importorskip("lm_eval.utils")
    common = fmt.common_yaml(export_lm_eval.raw_definition(name), 10)
    assert utils.apply_template(common["doc_to_target"], doc) == gold


def session_params(folder):
    from types import SimpleNamespace

    evaluate = SimpleNamespace(protocol="phase3", templates=["template1"], n_samples=None, batch_size=1, seed=0,
                               max_new_tokens={"default": 10},
                               sessions={"baseline": SimpleNamespace(condition="baseline", seed=None, out=str(folder),
                                                                     weights="models/base")})
    return SimpleNamespace(evaluate=evaluate, runs={}, base=SimpleNamespace(repo="tiny"))


def test_a_session_exports_its_prompts_generations_and_picks(tmp_path, repo_root):
    from stages.lib.paths import result_file_name
    from stages.lib.tasks import load_examples

    benchmark = load_benchmark("xnli")
    items = load_examples(benchmark, "en", fixtures_dir=repo_root / "fixtures" / "benchmarks", n_samples=3)
    key = "template1_xnli_data=en_instr=zh"
    rows = [{**item.row, "raw_output": f"out {i}", "pred": item.gold, "gold": item.gold, "correct": i != 1}
            for i, item in enumerate(items)]
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / result_file_name("baseline", None, "results", "template1")).write_text(json.dumps({key: rows}))
    picks = {key: [items[0].gold, "none of them", items[2].gold]}
    (folder / result_file_name("baseline", None, "summary_loglik", "template1")).write_text(
        json.dumps({"predictions": picks}))
    params = session_params(folder)
    out = tmp_path / "out"
    [task] = export_lm_eval.export_session(params, "baseline", out, {("xnli", "en"): items}, {"xnli": benchmark})
    assert task == "ld_xnli_template1_en_instr_zh"
    lines = [json.loads(line) for line in (out / "baseline" / f"samples_{task}_{fmt.DATE_ID}.jsonl").open()]
    assert [line["arguments"]["gen_args_0"]["arg_0"] for line in lines] == [
        benchmark.render("phase3", "template1", "zh", item.fields) for item in items]
    assert [line["resps"] for line in lines] == [[["out 0"]], [["out 1"]], [["out 2"]]]
    body = json.loads((out / "baseline" / f"results_{fmt.DATE_ID}.json").read_text())
    assert body["results"][task]["acc,none"] == pytest.approx(2 / 3)
    assert body["results"][task]["acc_loglik,none"] == pytest.approx(2 / 3)
    assert body["configs"][task]["doc_to_text"].startswith("请阅读")

    rows[0]["premise"] = "another item"  # the rows must be the benchmark's items, in order
    (folder / result_file_name("baseline", None, "results", "template1")).write_text(json.dumps({key: rows}))
    with pytest.raises(export_lm_eval.ExportError, match="not the benchmark's item 0"):
        export_lm_eval.export_session(params, "baseline", out, {("xnli", "en"): items}, {"xnli": benchmark})
