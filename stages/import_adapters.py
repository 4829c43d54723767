"""import_adapters: the published adapters of the study, copied into this repository's layout.

    python -m stages.import_adapters --revision <commit>                      # every run of params.yaml
    python -m stages.import_adapters --revision <commit> --runs condition-2-zh-5k-seed42
    python -m stages.import_adapters --revision <commit> --local-dir ~/lora   # an offline copy in the Hub's layout
    python -m stages.import_adapters --stage            # dvc.yaml: import_adapters (params.yaml's published.adapters)

Paper scale only (params.yaml rendered with ``--scale paper``): the published adapters fit
``CohereLabs/tiny-aya-base``, not the smoke model. For each run of params.yaml (or ``--runs``)
it fetches ``<path>/{adapter_config.json, adapter_model.safetensors, training_metrics.json}``
of ``--repo`` (default ``legesher/language-decoded-lora``) at ``--revision`` with
``huggingface_hub.snapshot_download(repo_id, revision=..., allow_patterns=...)``, where
``<path>`` is the adapter's path under ``models/`` (``tiny-aya-base/<run id>`` in Phase 3, the
flat ``<run id>`` in Phase 2: the Hub repo and this repository share the seed card's layout).
``--local-dir`` reads an existing folder in that layout instead of downloading (for example
one written by ``hf download --local-dir``; where its ``.cache/huggingface/download``
metadata names a commit, that commit must be the revision).

A revision must be pinned: ``PIN-ME`` (params.py's ``UNPINNED``) and branch names are refused.
Every adapter is checked before anything is copied (config and safetensors present, a LoRA
config, a readable safetensors header of ``lora_`` tensors), then copied to
``models/<path>/`` with ``import.json``: the repo, the revision, the path in the repo and the
sha256 of each file (no time, so a re-import writes the same bytes). ``python -m
stages.manifest`` lists imported adapters with that origin. The folders are the
``train@<run>`` outputs' paths: ``dvc status`` then reports those stages as changed; do not
``dvc commit`` imported adapters as trained ones.

``--stage`` is the DVC stage ``import_adapters``: repo and revision from ``published.adapters`` of
params.yaml, every run, into its own output ``data/published/adapters/<path>/`` (never ``models/``,
which is train's). With ``published.enabled: false`` (the smoke default) it writes only
``data/published/adapters/status.json`` saying why, without network; enabled, the revision must be
pinned. The download is stages/lib/published.py's (token from ``HF_TOKEN`` only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

from stages.lib import published
from stages.lib.params import UNPINNED, ParamsError, Params, load_params
from stages.lib.provenance import file_sha256, write_json
from stages.lib.paths import adapter_folder
from stages.lib.errors import exit_stage

DEFAULT_REPO = "legesher/language-decoded-lora"
REQUIRED = ("adapter_config.json", "adapter_model.safetensors")
OPTIONAL = ("training_metrics.json",)
MOVING = published.MOVING
STAGE_OUT = Path("data/published/adapters")

AdapterImportError = published.PublishedError  # an import that cannot be done as asked; the message says why
check_revision = published.check_revision


def hub_paths(params: Params, run_ids: list[str]) -> dict[str, str]:
    """run id -> the adapter's path in the Hub repo (= its path under models/)."""
    unknown = [run_id for run_id in run_ids if run_id not in params.runs]
    if unknown:
        raise AdapterImportError(f"runs not in params.yaml: {', '.join(unknown)}")
    return {run_id: adapter_folder(Path("."), params.train, run_id).as_posix() for run_id in run_ids}


def download(repo: str, revision: str, patterns: list[str], cache_dir: Path | None = None) -> Path:
    """The network boundary: the Hub snapshot of just these files (the HF cache; honours HF_HUB_OFFLINE)."""
    return published.snapshot(repo, "model", revision, patterns, cache_dir)


def local_commit(source: Path, path_in_repo: str) -> str | None:
    """The commit a ``hf download --local-dir`` copy recorded for a file, if it recorded one."""
    metadata = source / ".cache" / "huggingface" / "download" / f"{path_in_repo}.metadata"
    if not metadata.is_file():
        return None
    return metadata.read_text(encoding="utf-8").splitlines()[0].strip() or None


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a safetensors header (8-byte little-endian length, then JSON)."""
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise AdapterImportError(f"{path}: not a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000 or length > path.stat().st_size:
            raise AdapterImportError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AdapterImportError(f"{path}: unreadable safetensors header") from None
    return sorted(key for key in header if key != "__metadata__")


def check_adapter(source: Path, path_in_repo: str, revision: str) -> None:
    folder = source / path_in_repo
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise AdapterImportError(f"{path_in_repo}: no {', '.join(missing)} at that revision")
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise AdapterImportError(f"{path_in_repo}/adapter_config.json: not JSON") from None
    if config.get("peft_type") != "LORA":
        raise AdapterImportError(f"{path_in_repo}/adapter_config.json: peft_type {config.get('peft_type')!r}, not LORA")
    keys = safetensors_keys(folder / "adapter_model.safetensors")
    if not keys or not all(".lora_" in key for key in keys):
        raise AdapterImportError(f"{path_in_repo}/adapter_model.safetensors: not LoRA weights ({len(keys)} tensors)")
    for name in REQUIRED:
        commit = local_commit(source, f"{path_in_repo}/{name}")
        if commit is not None and commit != revision:
            raise AdapterImportError(f"{path_in_repo}/{name}: the local copy is of commit {commit}, not {revision}")


def import_adapters(
    params: Params,
    repo: str,
    revision: str,
    run_ids: list[str] | None = None,
    *,
    local_dir: Path | None = None,
    models_dir: Path = Path("models"),
    cache_dir: Path | None = None,
) -> list[Path]:
    """Fetch, verify every adapter, then copy each into ``models_dir/<path>/`` with ``import.json``."""
    check_revision(revision)
    if params.scale != "paper":
        raise AdapterImportError(
            "the published adapters fit CohereLabs/tiny-aya-base: render paper params first "
            "(`python -m tools.configure --scale paper`)"
        )
    paths = hub_paths(params, list(params.runs) if not run_ids else run_ids)
    patterns = [f"{path}/{name}" for path in paths.values() for name in (*REQUIRED, *OPTIONAL)]
    source = local_dir if local_dir is not None else download(repo, revision, patterns, cache_dir)
    for path in paths.values():  # all or nothing: nothing is copied if one adapter is wrong
        check_adapter(source, path, revision)
    written = []
    for run_id, path in paths.items():
        out = models_dir / path
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        files = {}
        for name in (*REQUIRED, *OPTIONAL):
            if (source / path / name).is_file():
                shutil.copyfile(source / path / name, out / name)
                files[name] = file_sha256(out / name)
        write_json(
            out / "import.json",
            {"stage": "import_adapters", "repo": repo, "revision": revision, "path_in_repo": path, "run_id": run_id,
             "files_sha256": files},
        )
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=DEFAULT_REPO)
    parser.add_argument("--revision", default=UNPINNED, help="the Hub repo's commit sha (required: never a branch)")
    parser.add_argument("--runs", nargs="*", help="run ids of params.yaml (default: all)")
    parser.add_argument("--local-dir", type=Path, help="read this folder in the Hub's layout instead of downloading")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", type=Path, default=None, help=f"default models (with --stage: {STAGE_OUT})")
    parser.add_argument("--stage", action="store_true",
                        help="the dvc stage: repo and revision from published.adapters of params.yaml, every run")
    parser.add_argument("--cache-dir", type=Path, help="the Hugging Face cache to use (default: the hub's own)")
    args = parser.parse_args(argv)
    if args.stage and (args.runs or args.local_dir or args.revision != UNPINNED or args.repo != DEFAULT_REPO):
        parser.error("--stage takes repo, revision and runs from params.yaml; give none of --repo, --revision, "
                     "--runs, --local-dir")
    try:
        params = load_params(args.params)
        if args.stage:
            args.models = args.models or STAGE_OUT
            if not params.published.enabled:
                reason = f"{args.params}: published.enabled is false (the smoke default: no network)"
                published.write_skipped(args.models, "import_adapters", reason, "set published.enabled: true and "
                                        "published.adapters.revision in paper params, then `dvc repro import_adapters`")
                print(f"import_adapters: skipped, {reason}; {args.models / published.STATUS} says so")
                return 0
            args.repo, args.revision = params.published.adapters.repo, params.published.adapters.revision
            check_revision(args.revision, "published.adapters.revision")
            published.reset(args.models)
        written = import_adapters(
            params, args.repo, args.revision, args.runs, local_dir=args.local_dir, models_dir=args.models or Path("models"),
            cache_dir=args.cache_dir,
        )
    except (AdapterImportError, ParamsError, OSError) as error:
        print(f"import_adapters: {error}", file=sys.stderr)
        return 2
    if args.stage:
        write_json(args.models / published.STATUS, {"stage": "import_adapters", "status": "imported", "repo": args.repo,
                                                    "revision": args.revision, "adapters": len(written)})
    print(f"import_adapters: {len(written)} adapters of {args.repo}@{args.revision} -> {args.models or 'models'}/")
    return 0


if __name__ == "__main__":
    exit_stage(main)
