"""export_lm_eval: every evaluation session in lm-evaluation-harness's results format, and the study's prompts
as lm-eval task YAMLs, so that an lm-eval user can read our numbers and run our byte-exact prompts.

    python -m stages.export_lm_eval --params params.yaml --out reports/lm-eval    # dvc.yaml: export_lm_eval

Reads each session of ``evaluate.sessions`` (its ``_results_`` and ``_summary_loglik_`` files under ``out``) and
the benchmark items it scored (``stages/lib/tasks``, fixtures or Hub as evaluate read them). Writes
``<out>/<session>/results_<date>.json`` and ``samples_<task>_<date>.jsonl`` (stages/lib/lm_eval_format.py; the
prompt of each sample is rendered from the template, byte-exact as evaluate sent it), and
``<out>/tasks/<benchmark>/`` (a ``_<benchmark>_common_yaml`` and one YAML per template, data and instruction
language). The bytes depend on the inputs only: the date in the names is the epoch, and ``git_hash`` is the
commit the session was evaluated at (its provenance.json).
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
from pathlib import Path
from typing import Sequence

import yaml

from stages.lib import lm_eval_format as fmt
from stages.lib import results
from stages.lib.errors import StageError, exit_stage
from stages.lib.tasks import find_benchmark, load_examples
from stages.lib.params import load_params
from stages.lib.paths import result_file_name


class ExportError(StageError, RuntimeError):
    pass


def export_session(params, session_id: str, out: Path, examples: dict, benchmarks: dict) -> list[str]:
    """Write one session's results and samples; returns the task names."""
    evaluate = params.evaluate
    session = evaluate.sessions[session_id]
    folder = Path(session.out)
    tasks, configs = {}, {}
    for template in evaluate.templates:
        name = result_file_name(session.condition, session.seed, "results", template, evaluate.n_samples)
        path = folder / name
        if not path.is_file():
            raise ExportError(f"{path}: missing (run `dvc repro evaluate@{session_id}` first)")
        body = results.read_json(path)
        loglik_path = folder / result_file_name(session.condition, session.seed, "summary_loglik", template,
                                                evaluate.n_samples)
        picks = results.read_json(loglik_path).get("predictions", {}) if loglik_path.is_file() else {}
        for key, rows in body.items():
            if key in ("summary", "parse_failure_rates"):
                continue
            cell = results.parse_cell_key(key)
            if cell.benchmark not in benchmarks:
                continue
            benchmark = benchmarks[cell.benchmark]
            items = examples[(cell.benchmark, cell.data_lang)]
            if len(items) < len(rows):
                raise ExportError(f"{path}: {key} has {len(rows)} rows, the benchmark {len(items)} items")
            tokens = evaluate.max_new_tokens.get(cell.benchmark, evaluate.max_new_tokens["default"])
            task = fmt.task_name(cell.benchmark, cell.template, cell.data_lang, cell.instr_lang)
            chosen = picks.get(key)
            samples = []
            for i, (row, item) in enumerate(zip(rows, items)):
                for row_key in benchmark.row_keys.values():
                    if row_key in row and row[row_key] != item.row.get(row_key, row[row_key]):
                        raise ExportError(f"{path}: {key} row {i} is not the benchmark's item {i} ({row_key})")
                prompt = benchmark.render(evaluate.protocol, cell.template, cell.instr_lang, item.fields)
                samples.append(fmt.sample(i, {**item.fields, "gold": item.gold}, prompt, row, tokens,
                                          None if chosen is None else chosen[i]))
            tasks[task] = samples
            configs[task] = {"task": task, **fmt.common_yaml(raw_definition(cell.benchmark), tokens),
                             **{k: v for k, v in fmt.task_yaml(raw_definition(cell.benchmark), evaluate.protocol,
                                                                cell.template, cell.data_lang, cell.instr_lang).items()
                                if k not in ("include", "task")}}
    provenance = folder / "provenance.json"
    git_hash = results.read_json(provenance).get("git_sha") if provenance.is_file() else None
    config = {"model": "hf", "model_args": f"pretrained={params.base.repo},peft={evaluate.sessions[session_id].weights}",
              "batch_size": evaluate.batch_size, "random_seed": evaluate.seed, "numpy_seed": evaluate.seed,
              "torch_seed": evaluate.seed, "fewshot_seed": None, "limit": evaluate.n_samples,
              "gen_kwargs": {"do_sample": False}}
    target = out / session_id
    target.mkdir(parents=True, exist_ok=True)
    for task, samples in tasks.items():
        (target / f"samples_{task}_{fmt.DATE_ID}.jsonl").write_text(fmt.jsonl(samples), encoding="utf-8")
    body = fmt.results_file(tasks, configs, config, git_hash, session_id)
    (target / f"results_{fmt.DATE_ID}.json").write_text(results.dumps(body) + "\n", encoding="utf-8")
    return list(tasks)


def raw_definition(name: str, dirs: Sequence[str] = ()) -> dict:
    """The benchmark's YAML as data (templates byte-exact), for the task configs: a copy of one parse per
    benchmark (every session's every cell asks for it: 3,337 pure-Python parses were 90% of the stage)."""
    return copy.deepcopy(_parsed_definition(name, tuple(dirs)))


@functools.lru_cache(maxsize=None)
def _parsed_definition(name: str, dirs: tuple[str, ...]) -> dict:
    return yaml.safe_load(find_benchmark(name, dirs).path.read_text(encoding="utf-8"))


def write_tasks(params, out: Path) -> int:
    """One lm-eval task YAML per benchmark × template × data language × instruction language."""
    evaluate = params.evaluate
    count = 0
    for name in evaluate.benchmarks:
        definition = raw_definition(name, evaluate.tasks_dirs)
        if evaluate.protocol not in definition["templates"]:
            continue
        folder = out / "tasks" / name
        folder.mkdir(parents=True, exist_ok=True)
        tokens = evaluate.max_new_tokens.get(name, evaluate.max_new_tokens["default"])
        source = f"stages/lib/tasks/{name}.yaml"
        (folder / f"_{name}_common_yaml").write_text(fmt.dump_yaml(fmt.common_yaml(definition, tokens), source),
                                                    encoding="utf-8")
        for template in evaluate.templates:
            for data_lang in evaluate.data_langs:
                for instr_lang in evaluate.instr_langs:
                    body = fmt.task_yaml(definition, evaluate.protocol, template, data_lang, instr_lang)
                    (folder / f"{body['task']}.yaml").write_text(fmt.dump_yaml(body, source), encoding="utf-8")
                    count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/lm-eval")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    evaluate = params.evaluate
    out = Path(args.out)
    fixtures = Path(evaluate.fixtures_dir) if evaluate.source == "fixtures" else None
    benchmarks = {name: find_benchmark(name, evaluate.tasks_dirs) for name in evaluate.benchmarks}
    examples = {(name, lang): load_examples(b, lang, fixtures_dir=fixtures, split="eval", n_samples=evaluate.n_samples)
                for name, b in benchmarks.items() for lang in evaluate.data_langs}
    try:
        n_tasks = write_tasks(params, out)
        for session_id in evaluate.sessions:
            export_session(params, session_id, out, examples, benchmarks)
    except ExportError as error:
        print(f"export_lm_eval: {error}", file=sys.stderr)
        return 1
    print(f"export_lm_eval: {len(evaluate.sessions)} sessions, {n_tasks} task YAMLs -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    exit_stage(main)
