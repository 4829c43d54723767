"""manifest: the adapter inventory, the seed card's path -> phase -> source corpus -> condition -> seed map.

    python -m stages.manifest                     # dvc.yaml: manifest
    python -m stages.manifest --allow-missing     # list runs not trained (or imported) yet as missing

Reads params.yaml (``runs``, the sources, ``train.adapters_dir``) and, for each run in params
order (never by globbing folders), its adapter folder: ``run_config.json`` (written by
train: the dataset's sha256, the base) or ``import.json`` (written by import_adapters: the Hub
repo and revision), and the sha256 of ``adapter_model.safetensors`` and
``adapter_config.json``; for the card also ``metrics/train/<run>/summary.json`` and
``reports/metrics.json``. Writes ``models/manifest.json`` and its readable twin
``models/MANIFEST.md``, and ``models/README.md``, the adapters' Hub model card
(stages/lib/cards.py: front matter, inventory, the training configuration from each
``run_config.json`` and ``metrics/train/<run>/summary.json``, the evaluation summary from
``reports/metrics.json``, usage). It replaces the card PEFT writes into each adapter folder,
which train deletes: one card for the whole repository, as the published one. All three are
deterministic: no time, no host, no absolute path.

Paths are relative to ``models/``, as the card's ``subfolder=`` argument takes them:
``tiny-aya-base/condition-2-zh-5k-seed42`` (Phase 3) or ``condition-2-zh-5k`` (Phase 2's flat
layout, ``train.adapters_dir: models``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stages.lib import cards
from stages.lib.cards import source_corpus
from stages.lib.params import ParamsError, Params, Run, load_params
from stages.lib.provenance import file_sha256, write_json
from stages.lib.paths import adapter_folder
from stages.lib.errors import STAGE_FAILED, StageError, exit_stage

SCHEMA_VERSION = 1
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ManifestError(StageError, ValueError):
    """An adapter the manifest cannot describe; the message names it."""


def processing(params: Params, run: Run) -> str:
    """How the condition turned the source files into training files, in the card's words."""
    if run.condition == 1:
        return "raw English Python"
    if run.condition == 2:
        return f"reserved words transpiled to {run.data_lang} (packs {params.transpile.packs})"
    if run.condition == 3:
        fill = "" if params.native.mode == "import" else f", filled from {params.native.fill_from}"
        return f"native {run.data_lang} code ({params.native.mode}{fill})"
    if run.condition == 5:
        return f"transpiled, then identifiers/comments/strings translated to {run.data_lang} by {params.translate.model}"
    return f"condition {run.condition}"


def adapter_record(folder: Path) -> dict:
    """The adapter's hashes and where it came from (trained here or imported from the Hub)."""
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        return {"status": "missing", "origin": None, "adapter_model_sha256": None, "adapter_config_sha256": None,
                "dataset_sha256": None}
    record = {
        "status": "present",
        "adapter_model_sha256": file_sha256(folder / "adapter_model.safetensors"),
        "adapter_config_sha256": file_sha256(folder / "adapter_config.json"),
    }
    if (folder / "run_config.json").is_file():
        run_config = json.loads((folder / "run_config.json").read_text(encoding="utf-8"))
        record["origin"] = "trained"
        record["dataset_sha256"] = run_config["params"]["dataset"]["sha256"]
    elif (folder / "import.json").is_file():
        imported = json.loads((folder / "import.json").read_text(encoding="utf-8"))
        record["origin"] = f"imported from {imported['repo']}@{imported['revision']}"
        record["dataset_sha256"] = None
    else:
        raise ManifestError(f"{folder}: neither run_config.json (train) nor import.json (import_adapters)")
    return record


def build_manifest(params: Params, models_dir: Path, allow_missing: bool = False) -> dict:
    adapters = []
    for run_id, run in params.runs.items():
        folder = adapter_folder(models_dir, params.train, run_id)
        record = adapter_record(folder)
        if record["status"] == "missing" and not allow_missing:
            raise ManifestError(f"no adapter at {folder}: train it (`dvc repro train@{run_id}`) or pass --allow-missing")
        adapters.append(
            {
                "path": folder.relative_to(models_dir).as_posix(),
                "run_id": run_id,
                "phase": params.phase,
                "source": source_corpus(params, run),
                "processing": processing(params, run),
                "dataset": run.dataset,
                "condition": run.condition,
                "data_lang": run.data_lang,
                "tier": run.tier,
                "seed": run.seed,
                **record,
            }
        )
    base = {"kind": params.base.kind, "repo": params.base.repo, "revision": params.base.revision}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": "python -m stages.manifest",
        "scale": params.scale,
        "phase": params.phase,
        "base": base,
        "adapters_dir": params.train.adapters_dir,
        "adapters": adapters,
    }


def render_markdown(manifest: dict) -> str:
    base = manifest["base"]
    base_text = "the tiny smoke model (models/base)" if base["kind"] == "tiny" else f"`{base['repo']}` @ `{base['revision']}`"
    lines = [
        "# Adapter manifest",
        "",
        "Generated by `python -m stages.manifest` from params.yaml and each adapter's `run_config.json` "
        "(or `import.json`); do not edit. Machine-readable twin: `manifest.json`.",
        "",
        f"- Phase: {manifest['phase']} (scale: {manifest['scale']}); adapters under `{manifest['adapters_dir']}/`",
        f"- Base model: {base_text}",
        "",
        "| Path (under `models/`) | Phase | Source corpus | Processing | Dataset | Condition | Lang | Tier | Seed "
        "| Origin | adapter_model.safetensors sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in manifest["adapters"]:
        corpus = a["source"]["corpus"] + (f" ({a['source']['config']})" if a["source"]["config"] else "")
        sha = f"`{a['adapter_model_sha256'][:16]}`" if a["adapter_model_sha256"] else "missing"
        lines.append(
            f"| `{a['path']}/` | {a['phase']} | {corpus} | {a['processing']} | {a['dataset']} | {a['condition']} "
            f"| {a['data_lang']} | {a['tier']} | {a['seed']} | {a['origin'] or 'missing'} | {sha} |"
        )
    example = manifest["adapters"][0]["path"] if manifest["adapters"] else "<path>"
    lines += [
        "",
        "Load one the seed card's way:",
        "",
        "```python",
        f'model = PeftModel.from_pretrained(base_model, "models", subfolder="{example}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def write_manifest(manifest: dict, models_dir: Path) -> None:
    write_json(models_dir / "manifest.json", manifest)
    (models_dir / "MANIFEST.md").write_text(render_markdown(manifest), encoding="utf-8")


def read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: not JSON ({error})") from error


def write_model_card(manifest: dict, models_dir: Path, train_metrics: Path, report_metrics: Path) -> None:
    """models/README.md from the manifest, each trained adapter's run_config.json and train summary, the report."""
    run_configs, summaries = {}, {}
    for a in manifest["adapters"]:
        run_configs[a["run_id"]] = read_json(models_dir / a["path"] / "run_config.json") if a["origin"] == "trained" else None
        lacking = [k for k in ("train", "derived") if run_configs[a["run_id"]] and k not in run_configs[a["run_id"]]["params"]]
        if lacking:
            raise ManifestError(f"{models_dir / a['path'] / 'run_config.json'}: no params.{lacking[0]} (not written by train?)")
        summaries[a["run_id"]] = read_json(train_metrics / a["run_id"] / "summary.json") if a["origin"] == "trained" else None
    text = cards.render_model_card(manifest, run_configs, summaries, read_json(report_metrics))
    (models_dir / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models", help="the models/ folder; the manifest goes beside the adapters")
    parser.add_argument("--allow-missing", action="store_true", help="list runs without an adapter as missing")
    parser.add_argument("--train-metrics", default="metrics/train", help="the train stages' summaries (metrics/train/<run>/)")
    parser.add_argument("--report-metrics", default="reports/metrics.json", help="the report's summary, for the card")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        manifest = build_manifest(params, Path(args.models), allow_missing=args.allow_missing)
        write_manifest(manifest, Path(args.models))
        write_model_card(manifest, Path(args.models), Path(args.train_metrics), Path(args.report_metrics))
    except (ManifestError, ParamsError, OSError) as error:
        print(f"manifest: {error}", file=sys.stderr)
        return STAGE_FAILED
    present = sum(a["status"] == "present" for a in manifest["adapters"])
    print(f"manifest: {present}/{len(manifest['adapters'])} adapters -> {args.models}/MANIFEST.md, manifest.json, README.md")
    return 0


if __name__ == "__main__":
    exit_stage(main)
