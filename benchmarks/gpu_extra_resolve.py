"""Does ``pip install -e ".[gpu]"`` still resolve on Python 3.12? pip's own resolver, nothing installed.

    python benchmarks/gpu_extra_resolve.py                      # python3.12 (PYENV_VERSION=3.12.1 where pyenv has it)
    python benchmarks/gpu_extra_resolve.py --python /path/to/python3.12 --extras gpu,translate

Runs ``<python> -m pip install --dry-run --ignore-installed --report <json> -e "<repo>[<extras>]"`` in a
scratch folder: the resolver picks every distribution the GPU machine would get (torch, transformers,
unsloth, unsloth_zoo, bitsandbytes, numpy, ...) without installing any. It needs the package index (the
network); a machine-wide pip constraint file (``PIP_CONSTRAINT``) is switched off so that the answer is what
a plain ``pip install`` on a fresh machine would do. Prints the outcome, the versions of the pins that matter
and whether they equal pyproject.toml's own pins, and ends with ``RESULT {json}``. Exit 0: it resolves with
the project's pins; 1: pip could not resolve (its last lines are printed) or picked other versions of the pins.
Not a test: CI has no network; run it after changing a pin or an extra.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATCHED = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy", "bitsandbytes", "unsloth",
           "unsloth-zoo", "triton", "xformers", "tokenizers")


def project_pins() -> dict[str, str]:
    """``name==version`` pins of pyproject.toml (base dependencies and every extra), names normalised."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    pins = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(?:;.*)?", spec)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def default_python() -> str:
    found = shutil.which("python3.12")
    return found or "python3.12"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=default_python(), help="a Python 3.12 interpreter (default: python3.12)")
    parser.add_argument("--extras", default="gpu", help="comma-separated extras (default: gpu)")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="seconds; pip 23.2 downloads whole wheels to read them (torch 527 MB, CUDA libraries): "
                        "about 20 min here, far less with a pip that reads PyPI's metadata files")
    args = parser.parse_args(argv)
    env = {**os.environ, "PIP_CONSTRAINT": "", "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    version = subprocess.run([args.python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, env=env)
    if version.returncode != 0:
        print(f"gpu_extra_resolve: cannot run {args.python}: {version.stderr.strip()}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="gpu-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        command = [args.python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                   str(report), "-e", f"{ROOT}[{args.extras}]"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"gpu_extra_resolve: pip did not finish in {args.timeout} s (no network?)", file=sys.stderr)
            return 1
        result = {"python": version.stdout.strip(), "extras": args.extras, "resolved": done.returncode == 0}
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-25:])
            network = re.search(r"(NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
                                r"ProxyError|Max retries exceeded)", done.stderr or "")
            result["reason"] = "no network to the package index" if network else "the resolver failed"
            print(f"gpu_extra_resolve: pip could not resolve .[{args.extras}] on Python {result['python']} "
                  f"({result['reason']}):\n{tail}")
            print("RESULT " + json.dumps(result, sort_keys=True))
            return 1
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    picked = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"] for item in installs}
    pins = project_pins()
    off_pin = {name: {"pinned": pins[name], "resolved": picked.get(name)} for name in pins
               if name in picked and picked[name] != pins[name]}
    result.update(distributions=len(picked), watched={name: picked.get(name) for name in WATCHED if name in picked},
                  off_pin=off_pin)
    print(f"gpu_extra_resolve: .[{args.extras}] resolves on Python {result['python']}: {len(picked)} distributions")
    for name, value in result["watched"].items():
        mark = "" if name not in pins else ("  (= pyproject)" if value == pins[name] else f"  (pyproject pins {pins[name]})")
        print(f"  {name:14} {value}{mark}")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 1 if off_pin else 0


if __name__ == "__main__":
    sys.exit(main())
