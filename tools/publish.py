"""publish: upload the adapters or a packaged dataset to the Hugging Face Hub (opt-in; never a DVC stage).

    python -m tools.publish adapters --repo ORG/NAME --dry-run                 # print what would go up
    HF_TOKEN=... python -m tools.publish adapters --repo ORG/NAME               # upload, record the commit
    python -m tools.publish dataset --dataset condition-2-zh-5k --repo ORG/NAME [--dry-run]

``adapters`` uploads from ``models/``: the card (``README.md``, written by the manifest stage),
``MANIFEST.md``, ``manifest.json``, ``TRAINING.md``, and every file of each adapter folder that
``manifest.json`` lists as present (never ``models/base`` or ``models/llink``), at the paths
``PeftModel.from_pretrained(..., subfolder=...)`` takes. ``dataset`` uploads
``data/packaged/<dataset>/`` (the two splits, the card, provenance.json) to a dataset repository.
One ``huggingface_hub.upload_folder`` call, one Hub commit, restricted by ``allow_patterns`` to
exactly the listed files. The repository must exist (create it on the Hub first).

After an upload, ``hub-commit.json`` beside the outputs (``models/hub-commit.json``,
``data/packaged/<dataset>/hub-commit.json``) records the repository, type, revision, the commit the
upload created and each file's size and sha256; commit it to git. It is never uploaded itself.

The token is read from ``HF_TOKEN`` only (no login file, no argument) and never printed or written.
``--dry-run`` reads no token and touches no network: it prints the repository, type, revision and
every file with its size, which is what the tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from stages.lib.paths import safe_join
from stages.lib.provenance import file_sha256, write_json

RECORD = "hub-commit.json"
MODEL_FILES = ("README.md", "MANIFEST.md", "manifest.json", "TRAINING.md")


class PublishError(ValueError):
    """Nothing to publish, or publishing refused; the message names the file or variable."""


def adapter_files(models: Path) -> list[str]:
    """The files to upload from models/, relative to it: the cards and each present adapter's folder."""
    manifest_path = models / "manifest.json"
    if not manifest_path.is_file():
        raise PublishError(f"{manifest_path}: no manifest; run `dvc repro manifest` first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    missing = [name for name in MODEL_FILES if not (models / name).is_file()]
    if missing:
        raise PublishError(f"{models}: missing {', '.join(missing)}; run `dvc repro manifest` first")
    files = list(MODEL_FILES)
    present = [a for a in manifest["adapters"] if a["status"] == "present"]
    if not present:
        raise PublishError(f"{manifest_path}: no adapter is present; nothing to publish")
    for adapter in present:
        folder = models / adapter["path"]
        if not folder.is_dir():
            raise PublishError(f"{folder}: listed in {manifest_path} but absent (dvc pull train@{adapter['run_id']}?)")
        files += sorted(p.relative_to(models).as_posix() for p in folder.iterdir() if p.is_file())
    return files


def dataset_files(folder: Path) -> list[str]:
    if not (folder / "README.md").is_file():
        raise PublishError(f"{folder}: no packaged dataset (README.md); run `dvc repro package@{folder.name}` first")
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != RECORD)


def plan(args: argparse.Namespace) -> tuple[Path, str, list[str]]:
    """(local folder, repo type, files relative to it) for the chosen target."""
    if args.target == "adapters":
        return Path(args.models), "model", adapter_files(Path(args.models))
    folder = safe_join(args.data, "packaged", args.dataset)
    return folder, "dataset", dataset_files(folder)


def describe(folder: Path, repo: str, repo_type: str, revision: str, files: list[str]) -> list[str]:
    lines = [f"publish: {len(files)} files from {folder} to {repo_type} repo {repo} at revision {revision}"]
    lines += [f"  {name}  {(folder / name).stat().st_size} bytes" for name in files]
    return lines


def token_from_environment() -> str:
    """HF_TOKEN, checked before any network use; its value never reaches a message."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise PublishError("HF_HUB_OFFLINE is set: unset it to publish (or pass --dry-run)")
    token = os.environ.get("HF_TOKEN", "")
    if not token.strip():
        raise PublishError("HF_TOKEN is not set: a write token for the repository, from the environment only")
    return token


def commit_record(folder: Path, repo: str, repo_type: str, revision: str, files: list[str], commit) -> dict:
    """What hub-commit.json holds: where the files went and the commit (a huggingface_hub CommitInfo) they made."""
    return {
        "repo_id": repo, "repo_type": repo_type, "revision": revision,
        "commit": commit.oid, "commit_url": str(commit.commit_url),
        "files": [{"path": name, "bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
                  for name in files],
    }


def upload(folder: Path, repo: str, repo_type: str, revision: str, files: list[str], token: str, message: str):
    from huggingface_hub import upload_folder

    try:
        return upload_folder(repo_id=repo, folder_path=folder, repo_type=repo_type, revision=revision, token=token,
                             allow_patterns=files, commit_message=message)
    except Exception as error:  # the Hub's HTTP and validation errors; they carry the URL, never the token
        raise PublishError(f"upload to {repo_type} repo {repo}@{revision} failed: {type(error).__name__}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=("adapters", "dataset"))
    parser.add_argument("--repo", required=True, help="the Hub repository, ORG/NAME (it must exist)")
    parser.add_argument("--revision", default="main", help="the branch to commit to")
    parser.add_argument("--dataset", help="dataset: one folder of data/packaged/")
    parser.add_argument("--models", default="models")
    parser.add_argument("--data", default="data")
    parser.add_argument("--message", default=None, help="the Hub commit message")
    parser.add_argument("--dry-run", action="store_true", help="print what would be uploaded; no token, no network")
    args = parser.parse_args(argv)
    if args.target == "dataset" and not args.dataset:
        parser.error("dataset needs --dataset NAME")
    try:
        folder, repo_type, files = plan(args)
        print("\n".join(describe(folder, args.repo, repo_type, args.revision, files)))
        if args.dry_run:
            print("publish: dry run, nothing uploaded")
            return 0
        token = token_from_environment()
        message = args.message or f"language-decoded-repro: {args.target} ({len(files)} files)"
        commit = upload(folder, args.repo, repo_type, args.revision, files, token, message)
        write_json(folder / RECORD, commit_record(folder, args.repo, repo_type, args.revision, files, commit))
    except (PublishError, OSError, ValueError) as error:  # ValueError: a bad JSON file, a --dataset leaving data/
        print(f"publish: {error}", file=sys.stderr)
        return 2
    print(f"publish: commit {commit.oid} on {args.repo} -> {folder / RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
