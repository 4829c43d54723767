"""llink_stage_b: K slots + LoRA (LLINK Stage B) on the frozen decoder.

    python -m stages.llink_stage_b [--params params.yaml]      # dvc.yaml: llink_stage_b

The frozen Stage A vector goes through ForeignScale -> gated adapter -> expander -> LayerNorm
into K input-embedding slots that replace ``<f0>..<fK-1>`` in the one shared prompt; LoRA on
q/k/v/o/up/down. Loss: CE on the target + EOS, the usage hinge every ``usage.every`` steps
(ablated = the placeholder rows, with gradient), slot-mean <-> teacher cosine-MSE and InfoNCE,
and the bag-of-words BCE (``stages/lib/llink/losses.py``). The teacher is the cached frozen decoder's state (equal
to the original's second Llama copy). The original's bugs are params (``llink.stage_b``):
``usage.sign: repo``, ``label_mask: half``, ``gate_clamp_infer``, ``prompt: drift``,
``placeholder_rows: reseed``.

Reads data/llink/pairs, models/llink/backbones, data/llink/features, models/llink/stage_a.
Writes models/llink/stage_b/lora/ (PEFT adapter), slots.safetensors, provenance.json;
metrics/llink/stage_b.json and metrics/llink/stage_b_history.csv.
"""

from __future__ import annotations


import torch
from safetensors.torch import save_file
from torch.nn import functional as F

from stages.lib.errors import exit_stage
from stages.lib.llink import inputs
from stages.lib.llink.backbones import deterministic
from stages.lib.llink.data import STOP_WORDS
from stages.lib.llink.finetune import attach_lora, lora_parameters, optimise, save_lora
from stages.lib.llink.losses import bow_loss, info_nce, mean_nll, usage_hinge
from stages.lib.llink.metrics import rounded
from stages.lib.llink.prompt import build_prompt, collate, encode_many, slot_text
from stages.lib.llink.run import main_of, provenance, stamp, write_csv, write_json
from stages.lib.llink.slots import SlotBridge, inject
from stages.lib.params import Llink

def bow_ignore(tokenizer) -> set[int]:
    """Stop words and special tokens leave the bag of words (the original's list)."""
    ids = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id}
    for word in [*STOP_WORDS, ".", ",", ":", ";", "!", "?", "'", '"', "(", ")"]:
        for text in (word, " " + word):
            ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def train(llink: Llink, paths: inputs.Paths) -> tuple[object, SlotBridge, list[dict], object]:
    cfg, k = llink.stage_b, llink.k_slots
    train_pairs, _ = inputs.pairs(paths)
    feats = inputs.features(paths)
    vectors = inputs.projected(llink, paths, feats)["train"]
    teacher = feats["teacher_train"]
    with deterministic(cfg.seed, llink.threads):
        decoder, tok = inputs.frozen_decoder(llink, paths)
        model = attach_lora(decoder, cfg.lora, cfg.seed)
        bridge = SlotBridge(teacher.shape[1], k, len(tok), cfg.gate_init, cfg.gate_clamp)
        prompt = build_prompt(slot_text(k))
        rows = encode_many(tok, [prompt] * len(train_pairs), [p.english for p in train_pairs], cfg.label_mask, k, cfg.seq_len)
        ignore = bow_ignore(tok)
        embed = model.get_input_embeddings()

        def step_loss(idx: torch.Tensor, step: int):
            batch = collate([rows[i] for i in idx], tok.pad_token_id)
            slots = bridge(vectors[idx])
            embeds = embed(batch["input_ids"])
            mask = batch["attention_mask"]
            logits = model(inputs_embeds=inject(embeds, slots, batch["slot_positions"]), attention_mask=mask).logits
            nll = mean_nll(logits, batch["labels"])
            loss, numbers = nll, {"nll": nll.item()}
            if cfg.usage.every and cfg.usage.weight and step % cfg.usage.every == 0:
                ablated = mean_nll(model(inputs_embeds=embeds, attention_mask=mask).logits, batch["labels"])
                hinge = usage_hinge(nll, ablated, cfg.usage.sign, cfg.usage.margin)
                loss = loss + cfg.usage.weight * hinge
                numbers.update(nll_ablated=ablated.item(), usage=hinge.item())
            pooled, target = slots.mean(1), teacher[idx]
            reg_cos = F.mse_loss(F.normalize(pooled, dim=-1), F.normalize(target, dim=-1))
            reg_nce = info_nce(pooled, target, cfg.info_nce_tau)
            bow = bow_loss(bridge.bow(pooled), [rows[i].target_ids for i in idx], ignore)
            loss = loss + cfg.align_cos_w * reg_cos + cfg.info_nce_w * reg_nce + cfg.bow_loss_w * bow
            numbers.update(reg_nce=reg_nce.item(), bow=bow.item(), gate=bridge.adapter.gate_value().item())
            return loss, numbers

        groups = [
            {"params": lora_parameters(model), "lr": cfg.lr_lora, "weight_decay": cfg.weight_decay},
            {"params": [*bridge.adapter.parameters(), *bridge.expander.parameters()], "lr": cfg.lr_adapter,
             "weight_decay": cfg.weight_decay},
            {"params": list(bridge.bow.parameters()), "lr": cfg.lr_bow, "weight_decay": 0.0},
            {"params": list(bridge.scale.parameters()), "lr": cfg.lr_scale, "weight_decay": 0.0},
        ]
        model.train()
        history = optimise(groups, cfg.steps, cfg.micro_batch, cfg.grad_accum, cfg.warmup_frac, cfg.clip, len(rows), step_loss,
                           desc="llink_stage_b")
        model.eval()
        bridge.eval()
    return model, bridge, history, tok


def run(llink: Llink, paths: inputs.Paths = inputs.Paths()) -> dict:
    model, bridge, history, _ = train(llink, paths)
    out = paths.stage_b
    out.mkdir(parents=True, exist_ok=True)
    save_lora(model, out / "lora")
    save_file({k: v.detach().contiguous() for k, v in bridge.state_dict().items()}, out / "slots.safetensors")
    params = {"stage_b": llink.stage_b, "k_slots": llink.k_slots, "threads": llink.threads}
    stamp(out, "llink_stage_b", params)
    write_csv(paths.metrics / "stage_b_history.csv", history)
    first, last = history[0], history[-1]
    record = {
        "steps": len(history),
        "loss_first": first["loss"], "loss_last": last["loss"], "nll_first": first["nll"], "nll_last": last["nll"],
        "gate": last["gate"],
        "trainable_params": {
            "lora": sum(p.numel() for p in lora_parameters(model)),
            "slot_modules": sum(p.numel() for n, p in bridge.named_parameters() if not n.startswith("bow.")),
            "bow_head": sum(p.numel() for p in bridge.bow.parameters()),
        },
        "provenance": provenance("llink_stage_b", params),
    }
    write_json(paths.metrics / "stage_b.json", rounded(record))
    return {"nll_first": round(first["nll"], 3), "nll_last": round(last["nll"], 3)}


main = main_of("llink_stage_b", run)

if __name__ == "__main__":
    exit_stage(main)
