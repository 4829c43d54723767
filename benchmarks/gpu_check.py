"""The prepared GPU check (issue 20 section 4): QLoRA (peft-bnb NF4) training and hf evaluation on one GPU,
compared with the CPU, through the stages' own code, offline, in a few minutes.

    python benchmarks/gpu_check.py                      # one CUDA GPU (H100/H200): the figures for the README
    python benchmarks/gpu_check.py --device cpu         # the same steps on CPU: a dry check that the script runs
    python benchmarks/gpu_check.py --base models/base   # the smoke base the pipeline built, instead of a fresh one

Needs torch, transformers, peft, accelerate, bitsandbytes (its wheel), and what the stages import (pydantic,
pyyaml, pyarrow, datasets, tokenizers, safetensors); nothing from the network. Steps:

1. the base: ``--base`` if given, else a smoke-shaped tiny Cohere2 (base.yaml's width 64, 2 layers) with a
   tokenizer trained on the benchmark fixtures and this repository's own Python files, pre-trained briefly
   on the fixtures' training items (stages/lib/pretrain.py), as the smoke base is;
2. training: ``train.backend: peft-bnb`` on an NF4 base with double quantisation (``fp16`` on CUDA, float32 on
   CPU), the smoke recipe (LoRA r16 on the seven modules, global batch 16, max_seq_length 256) on ``--rows``
   files of this repository's code (54: the smoke 5k split's 4 steps); peak VRAM and trained tokens/s;
3. evaluation: one session (that adapter) with ``evaluate.backend: hf`` on the 4-bit base, in this process
   (on the GPU), then ``python -m stages.evaluate`` on CPU (``CUDA_VISIBLE_DEVICES=""``) with the same params,
   and the share of rows whose generated text and extracted prediction agree.

Prints the figures and ends with ``RESULT {json}``. Exit 1 if a step failed, 0 otherwise (the agreement
is reported, not judged: NF4 kernels on GPU and CPU are not bit-identical).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

RUN = "condition-1-en-5k-seed42"
NEEDED = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "pydantic", "yaml", "pyarrow", "datasets",
          "tokenizers", "safetensors")


def missing_modules() -> list[str]:
    import importlib.util

    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def code_rows(count: int) -> list[dict]:
    """``count`` training rows: this repository's own Python files, in path order, cycled."""
    files = sorted(p for p in (ROOT / "stages").rglob("*.py") if p.stat().st_size > 200)
    rows = []
    for index in range(count):
        path = files[index % len(files)]
        code = path.read_text(encoding="utf-8")
        rows.append({"code": code, "code_en": code, "language": "en", "file_path": path.relative_to(ROOT).as_posix(),
                     "license": "MIT", "idx": index, "token_count": 0})
    return rows


def make_params(device: str, n_samples: int):
    from tools.configure import render
    from stages.lib.params import parse_params

    data = render("smoke", "phase3")
    data["train"].update(backend="peft-bnb", load_in_4bit=True, fp16=device == "cuda", save_steps=None,
                         optim="adamw_torch")
    data["evaluate"].update(load_in_4bit=True, dtype="float32", n_samples=n_samples,
                            fixtures_dir=str(ROOT / "fixtures" / "benchmarks"))
    return parse_params(data)


def build_base(out: Path, params, rows: list[dict], pretrain_steps: int) -> None:
    from stages.base import build_model, train_tokenizer
    from stages.lib.pretrain import pretrain, training_items

    e = params.evaluate
    items = training_items(e.benchmarks, e.data_langs, e.instr_langs, e.protocol, e.templates, Path(e.fixtures_dir),
                           e.anchor_lang, 0)
    texts = [row["code"] for row in rows] + [item.prompt + item.answer for item in items]
    tokenizer = train_tokenizer(texts, params.base.vocab_size, 0, 1024)
    model = build_model(dict(params.base.config), len(tokenizer), params.base.seed, tokenizer)
    if pretrain_steps:
        pretrain(model, tokenizer, items, steps=pretrain_steps, batch_size=16, learning_rate=1e-2, max_length=384, seed=0)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def predictions(folder: Path) -> dict[str, list[tuple[str, object]]]:
    found = {}
    for path in sorted(folder.glob("*_results_*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        for key, rows in body.items():
            if isinstance(rows, list):
                found[f"{path.name}:{key}"] = [(row["raw_output"], row["pred"]) for row in rows]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--base", type=Path, help="an existing smoke base (models/base); default: build one")
    parser.add_argument("--rows", type=int, default=54, help="training files (54: the smoke 5k split, 4 steps)")
    parser.add_argument("--pretrain-steps", type=int, default=30,
                        help="CPU pre-training steps of a fresh base (the CPU dry check on 2 busy cores took 20 min at 100)")
    parser.add_argument("--n-samples", type=int, default=8, help="evaluation items per benchmark and language")
    parser.add_argument("--work", type=Path, help="keep the base, adapter and outputs here (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: the dry check never touches a GPU
    else:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")  # one GPU, as stages.train pins it
    missing = missing_modules()
    if missing:
        print(f"gpu_check: missing modules {', '.join(missing)} (pip install -e '.[gpu]' or their wheels)", file=sys.stderr)
        return 1
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible; run with --device cpu for the dry check", file=sys.stderr)
        return 1
    started = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"device": args.device, "card": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
                    "torch": torch.__version__, "cores": os.cpu_count()}
    from importlib.metadata import version

    result["bitsandbytes"] = version("bitsandbytes")

    from stages import evaluate as ev
    from stages.lib.tables import split_path, write_parquet
    from stages.package import PACKAGED_SCHEMA
    from stages.train import train_run

    params = make_params(args.device, args.n_samples)
    run = params.runs[RUN]
    rows = code_rows(args.rows)
    data_dir = work / "data" / "packaged"
    write_parquet(split_path(data_dir / run.dataset, "train"), rows, PACKAGED_SCHEMA)
    base_dir = args.base or work / "models" / "base"
    if args.base is None:
        t = time.time()
        build_base(base_dir, params, rows, args.pretrain_steps)
        result["base_build_s"] = round(time.time() - t, 1)
    result["base"] = str(base_dir)

    # 2. training
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = train_run(RUN, run, params.train, params.base, base_dir=base_dir, data_dir=data_dir,
                    models_dir=work / "models", logs_dir=work / "logs", metrics_dir=work / "metrics")
    metrics = json.loads((out / "training_metrics.json").read_text(encoding="utf-8"))
    timing = json.loads((work / "logs" / f"train-{RUN}.json").read_text(encoding="utf-8"))
    trained_tokens = metrics["data"]["tokens"] * params.train.num_train_epochs
    result["train"] = {
        "steps": metrics["data"]["steps"], "rows": metrics["data"]["rows"], "tokens": trained_tokens,
        "seconds": round(timing["wall_seconds"], 2), "tokens_per_s": round(trained_tokens / timing["wall_seconds"], 1),
        "train_loss": metrics["train_result"].get("train_loss"),
        "peak_vram_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if args.device == "cuda" else None,
    }
    print(f"gpu_check: trained {result['train']['steps']} steps, {trained_tokens} tokens in "
          f"{result['train']['seconds']} s ({result['train']['tokens_per_s']} tokens/s), peak VRAM "
          f"{result['train']['peak_vram_mib']} MiB", flush=True)

    # 3. evaluation here, then on CPU in a subprocess with the same params
    here = work / "eval-here"
    t = time.time()
    timing = ev.evaluate_session(params, RUN, out=here, base_dir=base_dir, models_dir=work / "models",
                                 resume_root=work / "resume", progress=False, train_metrics=work / "metrics")
    result["evaluate_here"] = {"seconds": round(time.time() - t, 2), "examples": timing["examples_run"]}
    import yaml

    (work / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    cpu = work / "eval-cpu"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    t = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "stages.evaluate", "--session", RUN, "--params", str(work / "params.yaml"), "--base",
         str(base_dir), "--models", str(work / "models"), "--train-metrics", str(work / "metrics"), "--out", str(cpu), "--no-progress",
         "--resume-root", str(work / "resume-cpu")], cwd=work, env=env, capture_output=True, text=True,
    )
    if done.returncode != 0:
        print(f"gpu_check: the CPU evaluation failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return 1
    result["evaluate_cpu_s"] = round(time.time() - t, 2)
    ours, theirs = predictions(here), predictions(cpu)
    pairs = [(a, b) for key in ours for a, b in zip(ours[key], theirs.get(key, []))]
    result["agreement"] = {
        "rows": len(pairs),
        "raw_output": round(sum(a[0] == b[0] for a, b in pairs) / len(pairs), 4) if pairs else None,
        "pred": round(sum(a[1] == b[1] for a, b in pairs) / len(pairs), 4) if pairs else None,
    }
    result["total_s"] = round(time.time() - started, 1)
    print(f"gpu_check: evaluation {result['evaluate_here']['examples']} examples in "
          f"{result['evaluate_here']['seconds']} s on {args.device}, {result['evaluate_cpu_s']} s on CPU; "
          f"{result['agreement']['raw_output']} of raw outputs and {result['agreement']['pred']} of predictions "
          f"agree over {len(pairs)} rows; {result['total_s']} s in all ({result['card']})")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
