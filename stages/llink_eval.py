"""llink_eval: does the decoder use the injected slots? LLINK against its ablations and the direct baseline.

    python -m stages.llink_eval [--params params.yaml]      # dvc.yaml: llink_eval

On the dev pairs: target NLL with the slots injected, ablated (the placeholder rows: the
original's "zeroed"), true zeros and shuffled (another row's slots); the gate_boost sweep;
greedy generation (a plain loop without ``position_ids`` in ``generate`` or empty
``bad_words_ids``, both of which crash the original's ``infer``) scored by exact match, corpus
chrF (sacrebleu, its signature beside the score), content-word recall and number recall, for
LLINK, LLINK ablated and the direct fine-tuning baseline; the lexeme probe; the batch-diversity diagnostics; the token budget; and retrieval
by the slot mean (our reading of the paper's "Stage A + B" retrieval). Evaluation runs in eval
mode with the training gate clamp and prompt unless the ablation params say otherwise.

Reads every earlier llink output. Writes metrics/llink/eval.json, reports/llink.md,
data/llink/eval/samples.jsonl and provenance.json.
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from stages.lib.errors import exit_stage
from stages.lib.llink import inputs
from stages.lib.llink.backbones import deterministic, slot_tokens
from stages.lib.llink.data import content_words
from stages.lib.llink.losses import token_nll
from stages.lib.llink.metrics import diversity, generation_scores, inverse_ranks, retrieval, rounded
from stages.lib.llink.prompt import build_prompt, collate, encode_many, slot_text
from stages.lib.llink.report import write_report
from stages.lib.llink.run import main_of, provenance, stamp, write_json
from stages.lib.llink.slots import SLOT_MODES, SlotBridge, inject, position_ids, slot_inputs
from stages.lib.loading import load_adapter
from stages.lib.params import Llink
from stages.lib.progress import progress


def load_llink(llink: Llink, paths: inputs.Paths, decoder, tok):
    cfg = llink.stage_b
    model = load_adapter(decoder, paths.stage_b, "lora").eval()
    bridge = SlotBridge(decoder.config.hidden_size, llink.k_slots, len(tok), cfg.gate_init, cfg.gate_clamp)
    bridge.load_state_dict(load_file(paths.stage_b / "slots.safetensors"))
    return model, bridge.eval()


def reseed_placeholders(decoder, tok, k: int, seed: int) -> None:
    """The original's bug as an ablation: the <f_i> rows redrawn, as in each of its processes."""
    weight = decoder.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for token in slot_tokens(k):
            row = weight[tok.convert_tokens_to_ids(token)]
            row.copy_(torch.randn(row.shape, generator=generator, device="cpu") * decoder.config.initializer_range)


@torch.no_grad()
def nll(model, rows, slots: torch.Tensor | None, mode: str, pad_id: int, batch_size: int) -> float:
    """Mean target NLL per token over ``rows``; ``slots`` None: the rows carry their own input (direct)."""
    total, count = 0.0, 0
    embed = model.get_input_embeddings()
    for start in progress(range(0, len(rows), batch_size), desc=f"llink_eval nll {mode}", unit="batch"):
        batch = collate(rows[start : start + batch_size], pad_id)
        embeds = embed(batch["input_ids"])
        if slots is not None:
            embeds = slot_inputs(embeds, slots[start : start + batch_size], batch["slot_positions"], mode)
        logits = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        summed, n = token_nll(logits, batch["labels"])
        total, count = total + summed.sum().item(), count + n.sum().item()
    return total / max(count, 1)


@torch.no_grad()
def greedy(model, rows, slots: torch.Tensor | None, pad_id: int, eos_id: int, max_new: int, batch_size: int) -> list[list[int]]:
    """Greedy decoding by full forwards over left-padded ``inputs_embeds`` (no KV cache: tiny and exact)."""
    embed = model.get_input_embeddings()
    outputs = []
    for start in progress(range(0, len(rows), batch_size), desc="llink_eval generate", unit="batch"):
        batch = collate(rows[start : start + batch_size], pad_id, left=True)
        embeds, mask = embed(batch["input_ids"]), batch["attention_mask"]
        if slots is not None:
            embeds = inject(embeds, slots[start : start + batch_size], batch["slot_positions"])
        new = torch.empty(len(embeds), 0, dtype=torch.long)
        done = torch.zeros(len(embeds), dtype=torch.bool)
        for _ in range(max_new):
            logits = model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids(mask)).logits[:, -1]
            token = torch.where(done, torch.full_like(done, pad_id, dtype=torch.long), logits.argmax(-1))
            new = torch.cat([new, token[:, None]], 1)
            done |= token == eos_id
            embeds = torch.cat([embeds, embed(token)[:, None]], 1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            if done.all():
                break
        for row in new.tolist():
            outputs.append(row[: row.index(eos_id)] if eos_id in row else row)
    return outputs


@torch.no_grad()
def lexeme_probe(model, tok, rows, slots: torch.Tensor, references: list[str], top: int) -> dict:
    """The original's lexeme_probe: input-embedding rows nearest to the slot mean, the ranks of the
    reference's content words among them (inverse permutation), and their next-token logit gain."""
    table = torch.nn.functional.normalize(model.get_input_embeddings().weight, dim=-1)
    vocab = len(table)
    batch = collate(rows, tok.pad_token_id)
    embeds = model.get_input_embeddings()(batch["input_ids"])
    last = batch["attention_mask"].sum(1) - 1
    logits = {}
    for mode in ("injected", "ablated"):
        out = model(inputs_embeds=slot_inputs(embeds, slots, batch["slot_positions"], mode), attention_mask=batch["attention_mask"]).logits
        logits[mode] = out[torch.arange(len(rows)), last]
    examples, ranks, deltas = [], [], []
    for i, reference in enumerate(references):
        scores = table @ torch.nn.functional.normalize(slots[i].mean(0), dim=-1)
        rank = inverse_ranks(scores)
        words = {}
        for word in content_words(reference):
            ids = tok(" " + word, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                words[word] = {"rank": int(rank[ids[0]]),
                               "logit_delta": (logits["injected"][i, ids[0]] - logits["ablated"][i, ids[0]]).item()}
                ranks.append(words[word]["rank"])
                deltas.append(words[word]["logit_delta"])
        nearest = [tok.convert_ids_to_tokens(int(j)) for j in scores.topk(top).indices]
        examples.append({"reference": reference, "nearest": nearest, "content_words": words})
    return {"examples": examples, "mean_content_rank": sum(ranks) / max(len(ranks), 1), "chance_rank": (vocab + 1) / 2,
            "mean_logit_delta": sum(deltas) / max(len(deltas), 1), "vocab": vocab}


def run(llink: Llink, paths: inputs.Paths = inputs.Paths()) -> dict:
    cfg, ev, k = llink.stage_b, llink.eval, llink.k_slots
    _, dev = inputs.pairs(paths)
    feats = inputs.features(paths)
    clamp = cfg.gate_clamp_infer if cfg.gate_clamp_infer is not None else cfg.gate_clamp
    style = "drift_infer" if cfg.prompt == "drift" else "shared"
    references = [p.english for p in dev]
    with deterministic(ev.seed, llink.threads):
        vectors = inputs.projected(llink, paths, feats)["dev"]
        decoder, tok = inputs.frozen_decoder(llink, paths)
        if cfg.placeholder_rows == "reseed":
            reseed_placeholders(decoder, tok, k, ev.seed + 1)
        model, bridge = load_llink(llink, paths, decoder, tok)
        model.train(ev.eval_dropout)
        pad, eos = tok.pad_token_id, tok.eos_token_id
        rows = encode_many(tok, [build_prompt(slot_text(k), style)] * len(dev), references, "target", k, cfg.seq_len)
        with torch.no_grad():
            slots = bridge(vectors, clamp=clamp)
        nlls = {mode: nll(model, rows, slots, mode, pad, ev.batch_size) for mode in SLOT_MODES if mode != "shuffled"}
        nlls["shuffled"] = nll(model, rows, slots.roll(1, 0), "injected", pad, ev.batch_size)
        with torch.no_grad():
            boosts = {str(b): nll(model, rows, bridge(vectors, gate_boost=b, clamp=clamp), "injected", pad, ev.batch_size)
                      for b in ev.gate_boosts}
        n = min(ev.n_gen, len(dev))
        prompts = encode_many(tok, [build_prompt(slot_text(k), style)] * n, references[:n], "none", k, cfg.seq_len)
        hyps = {
            "llink": greedy(model, prompts, slots[:n], pad, eos, ev.max_new_tokens, ev.batch_size),
            "llink_ablated": greedy(model, prompts, None, pad, eos, ev.max_new_tokens, ev.batch_size),
        }
        probe = lexeme_probe(model, tok, rows[: ev.n_probe], slots[: ev.n_probe], references[: ev.n_probe], ev.probe_top)
        slot_retrieval = retrieval(slots.mean(1)[: llink.stage_a.eval_pairs], feats["teacher_dev"][: llink.stage_a.eval_pairs])
        batch_diversity = {"stage_a": diversity(vectors[:64]), "slot_mean": diversity(slots.mean(1)[:64])}

        # the direct fine-tuning baseline: a fresh frozen decoder + its own LoRA, the raw foreign text in the prompt
        direct_decoder, _ = inputs.frozen_decoder(llink, paths)
        direct = load_adapter(direct_decoder, paths.direct, "lora")
        direct.train(ev.eval_dropout)
        direct_rows = encode_many(tok, [build_prompt(p.foreign, style) for p in dev], references, "target", k, cfg.seq_len)
        direct_nll = nll(direct, direct_rows, None, "injected", pad, ev.batch_size)
        direct_prompts = encode_many(tok, [build_prompt(p.foreign, style) for p in dev[:n]], references[:n], "none", k, cfg.seq_len)
        hyps["direct"] = greedy(direct, direct_prompts, None, pad, eos, ev.max_new_tokens, ev.batch_size)

    texts = {name: [tok.decode(ids, skip_special_tokens=True).strip() for ids in out] for name, out in hyps.items()}
    generation = {name: generation_scores(texts[name], references[:n]) for name in texts}
    foreign_tokens = sum(len(tok(p.foreign, add_special_tokens=False)["input_ids"]) for p in dev) / len(dev)
    record = {
        "nll_injected": nlls["injected"], "nll_ablated": nlls["ablated"], "nll_zeros": nlls["zeros"],
        "nll_shuffled": nlls["shuffled"],
        "gap_ablated": nlls["ablated"] - nlls["injected"], "gap_shuffled": nlls["shuffled"] - nlls["injected"],
        "gap_zeros": nlls["zeros"] - nlls["injected"],
        "nll_direct": direct_nll,
        "gate_boost_nll": boosts,
        "generation": generation,
        "lexeme_probe": probe,
        "diversity": batch_diversity,
        "retrieval_slot_mean": slot_retrieval,
        "token_budget": {
            "foreign_tokens": foreign_tokens, "k_slots": k, "ratio": foreign_tokens / k,
            "prompt_tokens_llink": sum(len(r.ids) for r in prompts) / n,
            "prompt_tokens_direct": sum(len(r.ids) for r in direct_prompts) / n,
        },
        "settings": {"gate_clamp_infer": clamp, "prompt": style, "placeholder_rows": cfg.placeholder_rows,
                     "eval_dropout": ev.eval_dropout, "n_dev": len(dev), "n_gen": n},
        "provenance": provenance("llink_eval", llink),
    }
    record = rounded(record)
    write_json(paths.metrics / "eval.json", record)
    paths.eval.mkdir(parents=True, exist_ok=True)
    with (paths.eval / "samples.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {"reference": references[i], "foreign": dev[i].foreign, **{name: texts[name][i] for name in texts}}
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    stamp(paths.eval, "llink_eval", llink)
    write_report(paths.report, paths.metrics)
    return {"nll_injected": record["nll_injected"], "gap_ablated": record["gap_ablated"], "gap_shuffled": record["gap_shuffled"]}


main = main_of("llink_eval", run)

if __name__ == "__main__":
    exit_stage(main)
