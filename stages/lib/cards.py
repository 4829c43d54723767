"""The Hub cards: the adapters' model card (``models/README.md``) and each packaged dataset's card.

Built with ``huggingface_hub``'s ``ModelCardData``/``DatasetCardData`` (the YAML front matter the Hub reads)
and plain Markdown, in the layout of the published adapters' card (../shared/seeds/, the seed of this
project): base model, adapter inventory with each adapter's path, training configuration as it ran,
evaluation summary, ``PeftModel.from_pretrained(..., subfolder=...)`` usage. Pure functions of the dicts
the stages pass in; deterministic bytes (no dates, no hosts, no absolute paths).

Decisions, written here because the original's front matter is not in the seed text [unknown]:
- ``license: apache-2.0`` for the adapters, as the seed card's License section says;
- ``base_model`` only where the base is a Hub model (paper scale). The smoke adapters belong to a tiny
  stand-in built here; naming ``CohereLabs/tiny-aya-base`` would tell the Hub a falsehood, so the smoke
  card omits it, carries the ``smoke-test`` tag and says so at the top;
- ``datasets``: the Hub corpora the adapters' training files came from (none at smoke: installed packages);
- a dataset card's ``license`` is the set of its files' licenses as Hub identifiers (``other`` for any
  the Hub has no identifier for), and ``source_datasets`` the Hub corpus or ``original`` (smoke).
"""

from __future__ import annotations

import json

from huggingface_hub import DatasetCardData, ModelCardData

from stages.lib.params import HubSource, Params, Run

MODEL_LICENSE = "apache-2.0"
PIPELINE_TAG = "text-generation"
SMOKE_TAG = "smoke-test"
# the fetch filters' licenses (params fetch.filters.licenses) as the Hub spells them
HUB_LICENSES = {"Apache-2.0": "apache-2.0", "MIT": "mit", "BSD-2-Clause": "bsd-2-clause", "BSD-3-Clause": "bsd-3-clause",
                "ISC": "isc", "Unlicense": "unlicense"}
CONDITION_NAMES = {1: "English code", 2: "Legesher-transpiled code", 3: "native code", 5: "synthesized native code"}
BENCHMARK_NAMES = {"sib200": "SIB-200", "xnli": "XNLI", "csqa": "X-CSQA", "belebele": "Belebele"}


# --- where a run's training files come from (the manifest's and the dataset cards' source) -----------

def describe_source(source) -> dict:
    """The corpus a source reads: a Hub dataset at its revision, or installed distributions (smoke)."""
    if isinstance(source, HubSource):
        return {"corpus": source.dataset, "config": source.config, "data_dir": source.data_dir, "revision": source.revision}
    names = ", ".join(f"{name}=={version}" for name, version in sorted(source.distributions.items()))
    return {"corpus": f"installed distributions ({names})", "config": None, "data_dir": None, "revision": None}


def source_corpus(params: Params, run: Run) -> dict:
    """Where a run's training files come from; condition 3 is its own population by design."""
    if run.condition == 3:
        if params.native.mode == "import":
            published = params.native.published
            return {"corpus": published.dataset, "config": published.config, "data_dir": None, "revision": published.revision}
        return describe_source(params.fetch.sources[params.native.source])
    return describe_source(params.fetch.sources[params.subset.source])


def is_hub_corpus(source: dict) -> bool:
    return source["revision"] is not None


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket of a row count."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


def _front_matter(data) -> str:
    return "---\n" + data.to_yaml() + "\n---\n"


# --- the model card ---------------------------------------------------------------------------------------

def model_card_data(manifest: dict) -> ModelCardData:
    adapters = manifest["adapters"]
    smoke = manifest["base"]["kind"] != "hub"
    langs = sorted({a["data_lang"] for a in adapters} - {"en"})
    datasets = sorted({a["source"]["corpus"] for a in adapters if is_hub_corpus(a["source"])})
    tags = ["lora", "peft", "code", "multilingual", "language-decoded", manifest["phase"]] + ([SMOKE_TAG] if smoke else ["qlora"])
    return ModelCardData(
        base_model=None if smoke else manifest["base"]["repo"],
        library_name="peft",
        license=MODEL_LICENSE,
        datasets=datasets or None,
        language=["en", *langs],
        tags=tags,
        pipeline_tag=PIPELINE_TAG,
    )


def _shared_and_varying(configs: list[dict]) -> list[tuple[str, str]]:
    """(key, value) rows of the training configuration: one value where all adapters share it, else each."""
    keys = sorted({k for c in configs for k in c})
    rows = []
    for key in keys:
        values = list(dict.fromkeys(json.dumps(c.get(key), sort_keys=True) for c in configs))  # adapters' order
        rows.append((key, values[0] if len(values) == 1 else "varies: " + ", ".join(values)))
    return rows


def training_config(run_config: dict) -> dict:
    """The flat training configuration one adapter's run_config.json records as it ran."""
    params = run_config["params"]
    flat = {f"train.{k}": v for k, v in params["train"].items() if k != "lora"}
    flat.update({f"lora.{k}": v for k, v in params["train"]["lora"].items()})
    flat.update({f"derived.{k}": v for k, v in params["derived"].items()})
    flat.update({f"package.{k}": v for k, v in run_config.get("packages", {}).items()})
    return flat


def _evaluation_lines(evaluation: dict | None, smoke: bool) -> list[str]:
    if not evaluation:
        return ["No evaluation yet (`reports/metrics.json` is absent): run `dvc repro report`.", ""]
    benches = [b for b in BENCHMARK_NAMES if b in evaluation]
    conditions = list(dict.fromkeys(c for b in benches for c in evaluation[b]))
    # Phase 2 has no refined extractor: its report writes strict scores only
    scoring = "refined" if any("acc_refined" in m for b in benches for m in evaluation[b].values()) else "strict"
    lines = [
        f"{scoring.title()}-extractor accuracy (%) per condition, averaged over the cell grid, templates and seeds, with the "
        "difference from the baseline (the base model without adapter) in pp; from `reports/metrics.json` "
        "(`python -m stages.report`). Per-cell numbers, intervals and tests are in `reports/` "
        "(`tables.tex`, `significance.tsv`, `cross_seed_variance.tsv`).",
        "",
    ]
    if smoke:
        lines += ["These are smoke numbers: a tiny model on synthetic fixtures, a check that the pipeline runs, "
                  "not a result.", ""]
    lines += ["| Condition | seeds | " + " | ".join(BENCHMARK_NAMES[b] for b in benches) + " |",
              "|---|---|" + "---|" * len(benches)]
    for condition in conditions:
        cells, seeds = [], ""
        for bench in benches:
            m = evaluation[bench].get(condition)
            if m is None:
                cells.append("")
                continue
            seeds = str(m.get("n_seeds", ""))
            delta = f" ({100 * m[f'delta_{scoring}']:+.1f})" if m.get(f"delta_{scoring}") is not None else ""
            cells.append(f"{100 * m[f'acc_{scoring}']:.1f}{delta}")
        lines.append(f"| {condition} | {seeds} | " + " | ".join(cells) + " |")
    return lines + [""]


def render_model_card(manifest: dict, run_configs: dict[str, dict | None], summaries: dict[str, dict | None],
                      evaluation: dict | None) -> str:
    """models/README.md: ``run_configs`` and ``summaries`` (metrics/train/<run>/summary.json) keyed by run id."""
    adapters = manifest["adapters"]
    base = manifest["base"]
    smoke = base["kind"] != "hub"
    example = adapters[0]["path"] if adapters else "<path>"
    lines = ["# Language Decoded LoRA: reproduction", ""]
    if smoke:
        lines += [
            "> **Smoke adapters, not the study's.** This card describes the smoke-scale build of "
            "language-decoded-repro: LoRA adapters of a tiny stand-in model of tiny-aya-base's "
            "architecture (built and pre-trained for seconds by `stages/base.py`), trained on the Python files of "
            "installed packages, evaluated on synthetic benchmark fixtures. They check that the pipeline runs; "
            "they say nothing about the research question.",
            "",
        ]
    lines += [
        f"{'LoRA' if smoke else 'QLoRA'} adapters fine-tuned on multilingual code conditions, reproducing *Language, Decoded* "
        f"({manifest['phase']}, {manifest['scale']} scale). Generated by `python -m stages.manifest` from the "
        "pipeline's outputs; do not edit.",
        "",
        "## Base model",
        "",
        "A tiny `Cohere2ForCausalLM` built by the base stage (`models/base/`, not on the Hub)." if smoke
        else f"`{base['repo']}` at revision `{base['revision']}`.",
        "",
        "## Adapter inventory",
        "",
        f"Each adapter is one folder under `{manifest['adapters_dir']}/` (`adapter_config.json`, "
        "`adapter_model.safetensors`, `training_metrics.json`, `run_config.json`); the machine-readable map "
        "path → phase → corpus → condition → seed is `manifest.json` (readable: `MANIFEST.md`); how they are "
        "trained, rebuilt, resumed and imported: `TRAINING.md`.",
        "",
        "| Path | Condition | Training data | Lang | Tier | Seed | Origin |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in adapters:
        corpus = (f"{a['source']['corpus']}@{a['source']['revision']}" if is_hub_corpus(a["source"])
                  else "installed packages' files (MANIFEST.md)")
        lines.append(f"| `{a['path']}/` | {a['condition']} ({CONDITION_NAMES.get(a['condition'], '')}) | "
                     f"{a['processing']}; {corpus} | {a['data_lang']} | {a['tier']} | {a['seed']} | {a['origin'] or 'missing'} |")
    trained = {run: c for run, c in run_configs.items() if c}
    lines += ["", "## Training configuration", ""]
    if trained:
        lines += [f"As it ran: read from each adapter's `run_config.json` ({len(trained)} of {len(adapters)} "
                  "adapters trained here).", "", "| Parameter | Value |", "|---|---|"]
        lines += [f"| {k} | `{v}` |" for k, v in _shared_and_varying([training_config(c) for c in trained.values()])]
        lines += ["", "| Adapter | rows | tokens | steps | train loss |", "|---|---|---|---|---|"]
        for run, summary in summaries.items():
            if summary:
                lines.append(f"| {run} | {summary['rows']} | {summary['tokens']} | {summary['steps']} | "
                             f"{summary['train_loss']:.4f} |")
    else:
        lines.append("No adapter was trained here: they were imported (see Origin), trained by the original study.")
    lines += ["", "## Evaluation", "", *_evaluation_lines(evaluation, smoke)]
    base_load = ('AutoModelForCausalLM.from_pretrained("models/base")' if smoke
                 else f'AutoModelForCausalLM.from_pretrained("{base["repo"]}", revision="{base["revision"]}")')
    lines += [
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM",
        "from peft import PeftModel",
        "",
        f"base_model = {base_load}",
        "# this folder (\"models\") or the Hub repository it was published to",
        f'model = PeftModel.from_pretrained(base_model, "models", subfolder="{example}")',
        "```",
        "",
        "## License",
        "",
        "Apache 2.0",
        "",
    ]
    return _front_matter(model_card_data(manifest)) + "\n".join(lines)


# --- a dataset card -----------------------------------------------------------------------------------

def dataset_card_data(dataset: str, splits: list[str], rows: int, data_lang: str, licenses: list[str],
                      source: dict, smoke: bool = False) -> DatasetCardData:
    hub_licenses = sorted({HUB_LICENSES.get(name, "other") for name in licenses}) or ["other"]
    return DatasetCardData(
        pretty_name=dataset,
        license=hub_licenses,
        language=sorted({"en", data_lang}),
        size_categories=[size_category(rows)],
        source_datasets=[source["corpus"]] if is_hub_corpus(source) else ["original"],
        task_categories=[PIPELINE_TAG],
        tags=["code", "python", "language-decoded"] + ([SMOKE_TAG] if smoke else []),
        configs=[{"config_name": dataset,
                  "data_files": [{"split": split, "path": f"{split}-00000-of-00001.parquet"} for split in splits]}],
    )


def dataset_front_matter(data: DatasetCardData) -> str:
    return _front_matter(data)
