"""Prove an exact rebuild: two clean clones, the smoke `dvc repro` in each, every output compared.

    python -m tools.verify                       # clones of HEAD of this checkout, in a temp folder
    python -m tools.verify --repo PATH --workdir DIR --keep
    python -m tools.verify --repro-args "repro subset"   # any dvc arguments instead of plain `repro`

Clones HEAD of ``--repo`` (uncommitted edits are not verified) into two fresh folders, ``a/`` and
``b/``, and runs ``dvc repro`` in each with this interpreter (``sys.executable -m dvc``, its bin folder
first on PATH so each stage's ``python -m stages.<name>`` is this interpreter too) and
``DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1``. Then it compares:

- every output hash in the two ``dvc.lock`` files (the md5 of each out path, files and folders);
- byte for byte, every file under ``metrics/`` and ``reports/`` that git tracks or would track (tracked,
  or untracked and not ignored: the ``cache: false`` outputs a commit would carry), except files named
  ``provenance.json``. Those carry the git SHA and a dirty flag by design (README, "What a rebuild
  guarantees"); no stage depends on them, and they are the one place a commit is allowed to show.

The second clone runs as a second machine would, as far as one machine can play one: one thread
(``OMP_NUM_THREADS=1``; the first clone keeps the machine's default) and MKL held to AVX2
(``MKL_ENABLE_INSTRUCTIONS=AVX2``), so outputs that depend on thread count or instruction set show up
(stages.lib.numerics pins both away, so this checks that the pins hold; a real second machine is
checked by tests/test_numerics.py against the hashes committed in tests/data/numerics_hashes.json); ``--same-machine`` runs both clones alike. The first clone's
git-tracked metric, report and model-inventory files are also compared with the commit itself: the
committed results must be what HEAD's code rebuilds here.

It prints "N of N outputs identical", the metric and report files count and the committed files
reproduced, and exits 1 naming every output that differs. Then the no-op: a second ``dvc repro`` in the first clone must run nothing ("Running
stage" absent from its output) and ``dvc status --json`` must be ``{}``. Nothing is written to the
repository; the clones are removed unless ``--keep``. In a fresh clone every stage runs (no outputs, no
run-cache), so every lock entry is rebuilt; with targets in ``--repro-args``, the entries of stages not
run are HEAD's and agree trivially (the stages that ran are counted), and ``dvc status`` is asked about
the same targets.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

COMPARED_FOLDERS = ("metrics", "reports", "models")  # models: MANIFEST.md and manifest.json
# the second clone's stand-in for another machine: other thread count, MKL capped at AVX2
SECOND_MACHINE_ENV = {"OMP_NUM_THREADS": "1", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
EXCLUDED_NAMES = frozenset({"provenance.json"})  # git SHA + dirty flag, by design


@dataclass
class Comparison:
    """What two clones agree and disagree on."""

    outputs: int = 0
    files: int = 0
    excluded: int = 0
    committed: int = 0
    output_differences: list[str] = field(default_factory=list)
    file_differences: list[str] = field(default_factory=list)
    commit_differences: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        return self.output_differences + self.file_differences + self.commit_differences


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # dvc runs each stage's `python -m ...` from PATH: make it this interpreter, venv or not
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", **(extra or {})}


def run_dvc(args: Sequence[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=dvc_env(extra_env),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {cwd} ({done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def clone(repo: Path, target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo), str(target)], check=True, capture_output=True, text=True)
    return target


def lock_outputs(lock_file: Path) -> dict[str, str]:
    """out path -> its hash, over every stage of a dvc.lock."""
    lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    outputs = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            outputs[out["path"]] = out.get("md5") or out.get("checksum") or out.get("etag") or ""
    return outputs


def compare_locks(a: dict[str, str], b: dict[str, str], comparison: Comparison) -> None:
    paths = sorted(set(a) | set(b))
    comparison.outputs = len(paths)
    for path in paths:
        if path not in a or path not in b:
            comparison.output_differences.append(f"{path}: an output of only one clone's dvc.lock")
        elif a[path] != b[path]:
            comparison.output_differences.append(f"{path}: md5 {a[path]} vs {b[path]}")


def git_files(clone_dir: Path, folders: Sequence[str]) -> set[str]:
    """Files under ``folders`` that git tracks or would track (untracked and not ignored)."""
    done = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *folders],
                          cwd=clone_dir, check=True, capture_output=True, text=True)
    return {name for name in done.stdout.split("\0") if name}


def compare_files(a_dir: Path, b_dir: Path, comparison: Comparison, folders: Sequence[str] = COMPARED_FOLDERS) -> None:
    names = sorted(git_files(a_dir, folders) | git_files(b_dir, folders))
    for name in names:
        if Path(name).name in EXCLUDED_NAMES:
            comparison.excluded += 1
            continue
        comparison.files += 1
        a_file, b_file = a_dir / name, b_dir / name
        if not a_file.is_file() or not b_file.is_file():
            comparison.file_differences.append(f"{name}: present in only one clone")
        elif not filecmp.cmp(a_file, b_file, shallow=False):
            comparison.file_differences.append(f"{name}: bytes differ")


def compare_with_commit(clone_dir: Path, comparison: Comparison, folders: Sequence[str] = COMPARED_FOLDERS) -> None:
    """The rebuilt files git tracks (or would) against the commit: what a `git status` after repro shows."""
    names = {name for name in git_files(clone_dir, folders) if Path(name).name not in EXCLUDED_NAMES}
    comparison.committed = len(names)
    changed = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=all", "--", *folders],
                             cwd=clone_dir, check=True, capture_output=True, text=True).stdout
    for entry in sorted(filter(None, changed.split("\0"))):
        state, name = entry[:2], entry[3:]
        if Path(name).name in EXCLUDED_NAMES:
            continue
        what = {"??": "not in the commit", " D": "in the commit, not rebuilt"}.get(state, "differs from the commit")
        comparison.commit_differences.append(f"{name}: {what}")


def compare_clones(a_dir: Path, b_dir: Path, folders: Sequence[str] = COMPARED_FOLDERS) -> Comparison:
    comparison = Comparison()
    compare_locks(lock_outputs(a_dir / "dvc.lock"), lock_outputs(b_dir / "dvc.lock"), comparison)
    compare_files(a_dir, b_dir, comparison, folders)
    compare_with_commit(a_dir, comparison, folders)
    return comparison


def repro_targets(repro_args: Sequence[str]) -> list[str]:
    """The stage targets of ``repro [options] [targets]``, so `dvc status` looks at the same stages."""
    targets, skip = [], False
    for token in repro_args[1:]:
        if skip:
            skip = False
        elif token in ("-j", "--jobs"):
            skip = True
        elif not token.startswith("-"):
            targets.append(token)
    return targets


def check_noop(clone_dir: Path, repro_args: Sequence[str]) -> list[str]:
    """Problems with a second repro right after a full one: it must run nothing, status must be clean."""
    problems = []
    again = run_dvc(repro_args, clone_dir)
    ran = [line.strip() for line in (again.stdout + again.stderr).splitlines() if "Running stage" in line]
    problems += [f"no-op repro ran: {line}" for line in ran]
    status = run_dvc(["status", "--json", *repro_targets(repro_args)], clone_dir)
    if json.loads(status.stdout or "{}") != {}:
        problems.append(f"dvc status not clean: {status.stdout.strip()}")
    return problems


def verify(repo: Path, workdir: Path, repro_args: Sequence[str] = ("repro",), out=None,
           second_machine: dict[str, str] | None = SECOND_MACHINE_ENV) -> int:
    """Clone twice into ``workdir``, repro both (the second as ``second_machine``), compare, check the
    no-op; 0 when all agree."""
    out = out or sys.stdout
    clones = [clone(repo, workdir / name) for name in ("a", "b")]
    for clone_dir, extra_env in zip(clones, (None, second_machine)):
        started = time.perf_counter()
        done = run_dvc(repro_args, clone_dir, extra_env)
        ran = sum("Running stage" in line for line in (done.stdout + done.stderr).splitlines())
        playing = " with " + " ".join(f"{k}={v}" for k, v in extra_env.items()) if extra_env else ""
        print(f"dvc {' '.join(repro_args)} in {clone_dir}{playing}: {time.perf_counter() - started:.1f} s, "
              f"{ran} stages ran", file=out)

    comparison = compare_clones(*clones)
    same_outputs = comparison.outputs - len(comparison.output_differences)
    same_files = comparison.files - len(comparison.file_differences)
    print(f"{same_outputs} of {comparison.outputs} outputs identical (dvc.lock md5)", file=out)
    print(f"{same_files} of {comparison.files} metric and report files identical byte for byte "
          f"({comparison.excluded} provenance.json excluded)", file=out)
    print(f"{comparison.committed - len(comparison.commit_differences)} of {comparison.committed} committed "
          f"metric, report and inventory files rebuilt as committed", file=out)
    for difference in comparison.differences:
        print(f"DIFFERS {difference}", file=out)

    noop = check_noop(clones[0], repro_args)
    print("no-op: second repro ran nothing, dvc status clean" if not noop else "no-op: FAILED", file=out)
    for problem in noop:
        print(f"NOT NO-OP {problem}", file=out)
    return 1 if comparison.differences or noop else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository whose HEAD is cloned (default: .)")
    parser.add_argument("--workdir", type=Path, help="where the two clones go (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the clones and print where they are")
    parser.add_argument("--repro-args", default="repro", help='dvc arguments of the rebuild (default: "repro")')
    parser.add_argument("--same-machine", action="store_true",
                        help="run the second clone like the first (default: one thread, MKL capped at AVX2)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ldr-verify-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if any((workdir / name).exists() for name in ("a", "b")):
        parser.error(f"{workdir} already holds a/ or b/: give an empty --workdir")
    try:
        return verify(args.repo.resolve(), workdir, shlex.split(args.repro_args),
                      second_machine=None if args.same_machine else SECOND_MACHINE_ENV)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"clones kept in {workdir}")
        else:
            shutil.rmtree(workdir / "a", ignore_errors=True)
            shutil.rmtree(workdir / "b", ignore_errors=True)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
