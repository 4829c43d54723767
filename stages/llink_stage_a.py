"""llink_stage_a: the contrastive projector (LLINK Stage A) on the cached frozen features.

    python -m stages.llink_stage_a [--params params.yaml]      # dvc.yaml: llink_stage_a

The projector maps the encoder's sentence vector onto the decoder's state at
``<foreign_emb>`` after the English text: symmetric InfoNCE (teacher queue and one shared
set of hard negatives on the foreign->English side), temperature annealed linearly, the
direction and log-norm regularisers, AdamW with warmup + cosine (``stages/lib/llink/projector.py``). Unlike the
original, evaluation runs in eval mode (``llink.stage_a.eval_dropout: true`` restores the
original's dropout-on evaluation), every ``eval_every`` steps *and* at the last step.

Reads data/llink/features/features.safetensors. Writes models/llink/stage_a/projector.safetensors,
provenance.json; metrics/llink/stage_a.json (retrieval of the projector, the untrained projector
and the native baseline, with chance) and metrics/llink/stage_a_history.csv.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from stages.lib.errors import exit_stage
from stages.lib.llink.backbones import deterministic
from stages.lib.llink.losses import stage_a_loss
from stages.lib.llink.metrics import retrieval, rounded
from stages.lib.llink.projector import Projector, TeacherQueue, cosine_lr, temperature
from stages.lib.llink.run import main_of, provenance, stamp, write_csv, write_json
from stages.lib.params import Llink, LlinkStageA
from stages.lib.progress import progress

FEATURES = Path("data/llink/features/features.safetensors")
OUT = Path("models/llink/stage_a")
METRICS = Path("metrics/llink")


def build_projector(cfg: LlinkStageA, d_enc: int, d_dec: int) -> Projector:
    return Projector(d_enc, d_dec, cfg.hidden_mult, cfg.dropout)


@torch.no_grad()
def evaluate(projector: Projector, enc: torch.Tensor, teacher: torch.Tensor, dropout: bool) -> dict:
    """Foreign -> English retrieval on the dev slice, in eval mode unless ``dropout`` (the original's bug)."""
    projector.train(dropout)
    metrics = retrieval(projector(enc), teacher)
    projector.train()
    return metrics


def train(cfg: LlinkStageA, features: dict[str, torch.Tensor], threads: int) -> tuple[Projector, list[dict], dict]:
    """Train under ``cfg.seed``; returns the projector, the history and the untrained projector's metrics."""
    enc, teacher = features["enc_train"], features["teacher_train"]
    dev_enc, dev_teacher = features["enc_dev"][: cfg.eval_pairs], features["teacher_dev"][: cfg.eval_pairs]
    with deterministic(cfg.seed, threads):
        projector = build_projector(cfg, enc.shape[1], teacher.shape[1])
        untrained = evaluate(projector, dev_enc, dev_teacher, cfg.eval_dropout)
        optimizer = torch.optim.AdamW(projector.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                      weight_decay=cfg.weight_decay)
        queue = TeacherQueue(cfg.queue_size, teacher.shape[1])
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(enc), generator=generator, device="cpu")
        per_step = cfg.micro_batch * cfg.grad_accum
        history, pointer = [], 0
        for step in progress(range(cfg.steps), desc="llink_stage_a", unit="step"):
            lr = cosine_lr(step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            tau = temperature(step, cfg.tau_start, cfg.tau_end, cfg.steps)
            if pointer + per_step > len(order):  # a new pass, reshuffled
                order, pointer = torch.randperm(len(enc), generator=generator, device="cpu"), 0
            losses = []
            for _ in range(cfg.grad_accum):
                idx = order[pointer : pointer + cfg.micro_batch]
                pointer += cfg.micro_batch
                proj = projector(enc[idx])
                negatives = queue.hard_negatives(torch.nn.functional.normalize(proj.detach(), dim=-1), cfg.hard_negatives)
                loss, _ = stage_a_loss(proj, teacher[idx], negatives, tau, cfg.align_cos_w, cfg.lognorm_w)
                (loss / cfg.grad_accum).backward()
                queue.push(teacher[idx])
                losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(projector.parameters(), cfg.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                metrics = evaluate(projector, dev_enc, dev_teacher, cfg.eval_dropout)
                history.append({"step": step + 1, "loss": sum(losses) / len(losses), "tau": tau, "lr": lr,
                                "r1": metrics["r_at_1"], "mrr": metrics["mrr"], "mean_rank": metrics["mean_rank"]})
        projector.eval()
    return projector, history, untrained


def run(llink: Llink, features_path: Path = FEATURES, out: Path = OUT, metrics_dir: Path = METRICS) -> dict:
    cfg = llink.stage_a
    features = load_file(features_path, device=str(torch.get_default_device()))  # llink.device
    projector, history, untrained = train(cfg, features, llink.threads)
    with torch.no_grad():
        final = retrieval(projector(features["enc_dev"][: cfg.eval_pairs]), features["teacher_dev"][: cfg.eval_pairs])
        native = retrieval(features["native_dev"][: cfg.eval_pairs], features["teacher_dev"][: cfg.eval_pairs])
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in projector.state_dict().items()}, out / "projector.safetensors")
    stamp(out, "llink_stage_a", {"stage_a": cfg, "threads": llink.threads})
    write_csv(metrics_dir / "stage_a_history.csv", history)
    record = {
        **final,
        "x_chance": final["r_at_1"] / final["chance_r_at_1"],
        "untrained": untrained,
        "native_baseline": native,
        "provenance": provenance("llink_stage_a", {"stage_a": cfg, "threads": llink.threads}),
    }
    write_json(metrics_dir / "stage_a.json", rounded(record))
    return {"r_at_1": round(final["r_at_1"], 4), "chance": round(final["chance_r_at_1"], 4),
            "native_r_at_1": round(native["r_at_1"], 4)}


main = main_of("llink_stage_a", run)

if __name__ == "__main__":
    exit_stage(main)
