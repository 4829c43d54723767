"""llink_direct: the paper's comparator, direct LoRA fine-tuning of the decoder on the raw foreign text.

    python -m stages.llink_direct [--params params.yaml]      # dvc.yaml: llink_direct

The same decoder, prompt, LoRA, pairs, steps, batch and schedule as Stage B
(``llink.stage_b``), but the foreign text itself sits between ``<foreign>`` and ``</foreign>``
instead of K slots, so it pays the decoder's full token count for the foreign script. The
original repository has no such baseline; the paper reports one.

Reads data/llink/pairs, models/llink/backbones, data/llink/features/special_rows.safetensors.
Writes models/llink/direct/lora/ (PEFT adapter), provenance.json; metrics/llink/direct.json.
"""

from __future__ import annotations


from stages.lib.errors import exit_stage
from stages.lib.llink import inputs
from stages.lib.llink.backbones import deterministic
from stages.lib.llink.finetune import attach_lora, lora_parameters, optimise, save_lora
from stages.lib.llink.losses import mean_nll
from stages.lib.llink.metrics import rounded
from stages.lib.llink.prompt import build_prompt, collate, encode_many
from stages.lib.llink.run import main_of, provenance, stamp, write_json
from stages.lib.params import Llink


def train(llink: Llink, paths: inputs.Paths):
    cfg = llink.stage_b
    train_pairs, _ = inputs.pairs(paths)
    with deterministic(cfg.seed, llink.threads):
        decoder, tok = inputs.frozen_decoder(llink, paths)
        model = attach_lora(decoder, cfg.lora, cfg.seed)
        rows = encode_many(tok, [build_prompt(p.foreign) for p in train_pairs], [p.english for p in train_pairs],
                           cfg.label_mask, llink.k_slots, cfg.seq_len)

        def step_loss(idx, step):
            batch = collate([rows[i] for i in idx], tok.pad_token_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            nll = mean_nll(logits, batch["labels"])
            return nll, {"nll": nll.item()}

        groups = [{"params": lora_parameters(model), "lr": cfg.lr_lora, "weight_decay": cfg.weight_decay}]
        model.train()
        history = optimise(groups, cfg.steps, cfg.micro_batch, cfg.grad_accum, cfg.warmup_frac, cfg.clip, len(rows), step_loss,
                           desc="llink_direct")
        model.eval()
    return model, history, rows


def run(llink: Llink, paths: inputs.Paths = inputs.Paths()) -> dict:
    model, history, rows = train(llink, paths)
    paths.direct.mkdir(parents=True, exist_ok=True)
    save_lora(model, paths.direct / "lora")
    params = {"stage_b": llink.stage_b, "threads": llink.threads}
    stamp(paths.direct, "llink_direct", params)
    record = {
        "steps": len(history), "nll_first": history[0]["nll"], "nll_last": history[-1]["nll"],
        "train_tokens_per_row": sum(len(r.ids) for r in rows) / len(rows),
        "provenance": provenance("llink_direct", params),
    }
    write_json(paths.metrics / "direct.json", rounded(record))
    return {"nll_first": round(history[0]["nll"], 3), "nll_last": round(history[-1]["nll"], 3)}


main = main_of("llink_direct", run)

if __name__ == "__main__":
    exit_stage(main)
