"""lm-evaluation-harness's formats for the study's results and prompts: pure functions, no lm-eval import.

The layout follows lm-eval 0.4.13 (``lm_eval/loggers/evaluation_tracker.py``, ``lm_eval/evaluator.py``): one
``results_<date>.json`` per evaluation (``results`` {task: {"acc,none", "acc_stderr,none", "alias"}}, ``configs``,
``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``, ``config``, ``git_hash``) and one
``samples_<task>_<date>.jsonl`` per task (``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``,
``filtered_resps``, the metrics). lm-eval names files by the time of the run; an export has no run time, so the
date is the epoch (``DATE_ID``): the bytes depend on the results only, and lm-eval's filename parsing still works.

Task configs: one YAML per (benchmark, template, data language, instruction language), ``include``-ing a shared
``_<benchmark>_common_yaml`` as lm-eval's own ``xnli_common_yaml`` does, with the study's template turned into a
Jinja ``doc_to_text`` that renders the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from typing import Any, Mapping, Sequence

import yaml

DATE_ID = "1970-01-01T00-00-00.000000"
PREFIX = "ld"  # every task name starts so, apart from lm-eval's own xnli_*, belebele_* and sib200 tasks
VERSION = 1.0


def task_name(benchmark: str, template: str, data_lang: str, instr_lang: str) -> str:
    return f"{PREFIX}_{benchmark}_{template}_{data_lang}_instr_{instr_lang}"


def mean_stderr(values: Sequence[float]) -> float | str:
    """lm-eval's ``mean_stderr``: sample standard deviation (n - 1) over √n; "N/A" below two items, as lm-eval."""
    n = len(values)
    if n < 2:
        return "N/A"
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def sha(text: str) -> str:
    """lm-eval's ``hash_string``: sha256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample(doc_id: int, doc: Mapping[str, Any], prompt: str, row: Mapping[str, Any], max_gen_toks: int,
           loglik_pick: str | None) -> dict:
    """One line of ``samples_<task>.jsonl`` for a generated answer scored by the study's extractor.

    ``resps`` is the raw generation, ``filtered_resps`` the extracted answer (the study's extractor plays lm-eval's
    filter). With a log-likelihood pick, ``acc_loglik`` scores the highest-probability choice.
    """
    target = "" if row["gold"] is None else str(row["gold"])
    out = {
        "doc_id": doc_id,
        "doc": dict(doc),
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": [], "max_gen_toks": max_gen_toks,
                                                                 "do_sample": False}}},
        "resps": [[row["raw_output"]]],
        "filtered_resps": ["" if row["pred"] is None else str(row["pred"])],
        "filter": "extractor",
        "metrics": ["acc"] + (["acc_loglik"] if loglik_pick is not None else []),
        "doc_hash": sha(json.dumps(dict(doc), indent=2, default=str, ensure_ascii=False)),
        "prompt_hash": sha(prompt),
        "target_hash": sha(target),
        "acc": 1.0 if row["correct"] else 0.0,
    }
    if loglik_pick is not None:
        out["loglik_pick"] = loglik_pick
        out["acc_loglik"] = 1.0 if loglik_pick == row["gold"] else 0.0
    return out


def task_result(task: str, samples: Sequence[Mapping[str, Any]]) -> dict:
    """``results[task]``: each metric's mean and its standard error under lm-eval's ``metric,filter`` keys."""
    out: dict[str, Any] = {"alias": task}
    for metric in samples[0]["metrics"] if samples else ("acc",):
        values = [s[metric] for s in samples]
        out[f"{metric},none"] = sum(values) / len(values) if values else 0.0
        out[f"{metric}_stderr,none"] = mean_stderr(values)
    return out


def results_file(tasks: Mapping[str, Sequence[Mapping[str, Any]]], configs: Mapping[str, dict],
                 config: Mapping[str, Any], git_hash: str | None, model_name: str) -> dict:
    """The ``results_<date>.json`` of one evaluation session, keys in lm-eval's order."""
    return {
        "results": {task: task_result(task, samples) for task, samples in tasks.items()},
        "group_subtasks": {task: [] for task in tasks},
        "configs": {task: configs[task] for task in tasks},
        "versions": {task: VERSION for task in tasks},
        "n-shot": {task: 0 for task in tasks},
        "higher_is_better": {task: {m: True for m in (samples[0]["metrics"] if samples else ["acc"])}
                             for task, samples in tasks.items()},
        "n-samples": {task: {"original": len(samples), "effective": len(samples)} for task, samples in tasks.items()},
        "config": dict(config),
        "git_hash": git_hash,
        "model_name": model_name,
        "model_name_sanitized": model_name,
    }


def jsonl(samples: Sequence[Mapping[str, Any]]) -> str:
    """As lm-eval writes samples: one JSON object a line, UTF-8 as is."""
    return "".join(json.dumps(s, ensure_ascii=False, default=str) + "\n" for s in samples)


# --- task YAMLs --------------------------------------------------------------------------------------------


def jinja_path(column: str) -> str:
    """``question.choices.text.0`` -> ``question.choices.text[0]`` (a dataset column path in Jinja)."""
    parts = column.split(".")
    return parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])


def jinja_literal(text: str) -> str:
    """Literal text that Jinja renders unchanged, braces included."""
    return "{% raw %}" + text + "{% endraw %}" if any(c in text for c in "{}%#") else text


def doc_to_text(template: str, fields: Mapping[str, str]) -> str:
    """The study's template as Jinja over the dataset's columns: renders byte-identical prompts."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(jinja_literal(literal))
        if name is not None:
            out.append("{{" + jinja_path(fields[name]) + "}}")
    return "".join(out)


def doc_to_target(gold: Mapping[str, Any]) -> str:
    """The gold answer as the study normalises it (stages/lib/tasks: ``gold.normalise``)."""
    column = jinja_path(gold["column"])
    kind = gold["normalise"]
    if kind == "label_map":
        table = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in gold["map"].items()) + "}"
        return "{{" + table + "[" + column + "]}}"
    if kind == "number_to_letter":
        return "{{'ABCDEFGH'[(" + column + "|int) - 1]}}"
    if kind == "upper":
        return "{{" + column + "|upper}}"
    if kind == "lower":
        return "{{" + column + "|lower}}"
    raise ValueError(f"gold normaliser {kind!r} has no Jinja form")


def common_yaml(benchmark: Mapping[str, Any], max_gen_toks: int) -> dict:
    """The fields every task of one benchmark shares (lm-eval's ``*_common_yaml``)."""
    hub = benchmark["source"]["hub"]
    return {
        "dataset_path": hub["path"],
        "test_split": hub["split"],
        "output_type": "generate_until",
        "doc_to_target": doc_to_target(benchmark["gold"]),
        "generation_kwargs": {"until": [], "max_gen_toks": max_gen_toks, "do_sample": False},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": True}],
        "metadata": {"version": VERSION},
    }


def task_yaml(benchmark: Mapping[str, Any], protocol: str, template: str, data_lang: str, instr_lang: str) -> dict:
    code = benchmark["langs"][data_lang]
    config = benchmark["source"]["hub"].get("config")
    return {
        "include": f"_{benchmark['name']}_common_yaml",
        "task": task_name(benchmark["name"], template, data_lang, instr_lang),
        "dataset_name": None if config is None else config.replace("{code}", code),
        "doc_to_text": doc_to_text(benchmark["templates"][protocol][template][instr_lang], benchmark["fields"]),
    }


def dump_yaml(body: Mapping[str, Any], source: str) -> str:
    head = f"# Generated by `python -m stages.export_lm_eval` from {source}; edit that file, not this one.\n"
    return head + yaml.safe_dump(dict(body), sort_keys=False, allow_unicode=True, width=120)
