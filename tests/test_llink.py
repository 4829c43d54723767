"""LLINK building blocks (stages/lib/llink): metrics, schedules and queue, prompt and labels,
injection and ablations, the usage hinge, data and its errors, and save/load round trips."""

from __future__ import annotations

import json

import pytest
import torch

from stages.lib.llink import backbones as bb
from stages.lib.llink.data import (
    KHMER_DIGITS, PairsError, read_jsonl_pairs, split_pairs, synthetic_pairs, validate_jsonl,
)
from stages.lib.llink.losses import stage_a_loss, usage_hinge
from stages.lib.llink.metrics import generation_scores, inverse_ranks, retrieval
from stages.lib.llink.projector import TeacherQueue, cosine_lr, temperature
from stages.lib.llink.prompt import build_prompt, collate, encode, encode_many, slot_text
from stages.lib.llink.slots import SlotBridge, inject, slot_inputs
from stages.lib.params import LlinkDecoder, LlinkLora
from tests.conftest import profile_values

K = 4


# ----------------------------------------------------------------------------- metrics


def test_identity_retrieval_is_perfect():
    keys = torch.eye(16)
    m = retrieval(keys.clone(), keys)
    assert m["r_at_1"] == m["mrr"] == 1.0 and m["mean_rank"] == 1.0
    assert m["chance_r_at_1"] == pytest.approx(1 / 16)


def test_reversed_permutation_gives_known_ranks():
    keys = torch.eye(8)
    m = retrieval(keys.flip(0), keys)  # each query hits another key; the gold ties with 6 zeros
    assert m["r_at_1"] == 0.0 and m["r_at_5"] == 1.0
    assert m["mean_rank"] == 2.0 and m["mrr"] == 0.5


def test_random_vectors_sit_at_chance():
    g = torch.Generator().manual_seed(0)
    ranks = [retrieval(torch.randn(200, 32, generator=g), torch.randn(200, 32, generator=g))["mean_rank"] for _ in range(5)]
    assert sum(ranks) / 5 == pytest.approx(100.5, rel=0.1)


def test_inverse_ranks_match_the_naive_ordering():
    scores = torch.randn(50, generator=torch.Generator().manual_seed(1))
    ordering = scores.argsort(descending=True).tolist()
    assert inverse_ranks(scores).tolist() == [ordering.index(i) + 1 for i in range(50)]


def test_generation_scores():
    assert generation_scores(["the old man"], ["the  old man "])["chrf"] == pytest.approx(100.0)
    assert generation_scores(["xyz"], ["abc"])["chrf"] == 0.0
    s = generation_scores(["the old farmer sold 12 fish", "x"], ["the old farmer sold 12 fish", "the boy lost 7 cups"])
    assert s["exact_match"] == 0.5 and s["number_recall"] == 0.5
    assert s["content_word_recall"] == pytest.approx(0.5)  # 4/4 then 0/4


def test_chrf_is_corpus_chrf_with_its_signature():
    # One perfect row, one miss: the mean of sentence chrF would be 50. Corpus chrF pools the
    # n-gram counts first: 1 of 4 unigrams, 0 of 2 bigrams, 0 of 1 trigram (no 4- to 6-grams),
    # so precision = recall = (1/4) / 3 and F2 = 100/12.
    s = generation_scores(["a", "xyz"], ["a", "bcd"])
    assert s["chrf"] == pytest.approx(100 / 12)
    assert s["chrf_signature"] == "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"


# ----------------------------------------------------------------------------- Stage A pieces


def test_schedule_endpoints():
    assert cosine_lr(0, 1e-3, 1e-5, 10, 100) == 0.0
    assert cosine_lr(10, 1e-3, 1e-5, 10, 100) == pytest.approx(1e-3)
    assert cosine_lr(100, 1e-3, 1e-5, 10, 100) == pytest.approx(1e-5)
    assert temperature(0, 0.17, 0.08, 100) == 0.17 and temperature(100, 0.17, 0.08, 100) == pytest.approx(0.08)


def test_queue_wraps_and_never_holds_the_current_positives():
    g = torch.Generator().manual_seed(0)
    queue = TeacherQueue(size=10, dim=6)
    pushed = []
    for _ in range(7):
        batch = torch.randn(4, 6, generator=g)
        unit = torch.nn.functional.normalize(batch, dim=-1)
        negatives = queue.hard_negatives(unit, 5)  # chosen before the batch is pushed, as in training
        assert not any(torch.allclose(n, u) for n in negatives for u in unit)
        queue.push(batch)
        pushed.append(unit)
    assert queue.filled == 10 and queue.pointer == 28 % 10
    last = torch.cat(pushed)[-10:]
    held = queue.contents()
    assert all(any(torch.allclose(row, h) for h in held) for row in last)


def test_stage_a_loss_prefers_aligned_pairs():
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(8, 16, generator=g)
    aligned, _ = stage_a_loss(teacher * 2, teacher, teacher[:0], 0.1, 0.05, 0.02)
    shuffled, _ = stage_a_loss(teacher.roll(1, 0), teacher, teacher[:0], 0.1, 0.05, 0.02)
    assert aligned < shuffled


# ----------------------------------------------------------------------------- tokenizer, prompt, labels


@pytest.fixture(scope="module")
def tokenizer():
    pairs = synthetic_pairs(300, seed=0, lexicon_seed=0)
    texts = [p.english for p in pairs] + [build_prompt(slot_text(K))] * 5
    return bb.train_decoder_tokenizer(texts, 600, K)


def test_prompt_has_exactly_k_slots_and_labels_cover_target_and_eos(tokenizer):
    row = encode(tokenizer, build_prompt(slot_text(K)), "the old farmer sold 12 fish", "target", K, 256)
    assert len(row.slot_positions) == K
    assert [row.ids[p] for p in row.slot_positions] == tokenizer.convert_tokens_to_ids(bb.slot_tokens(K))
    supervised = [i for i, label in zip(row.ids, row.labels) if label != -100]
    assert supervised == row.target_ids + [tokenizer.eos_token_id]
    assert tokenizer.decode(row.target_ids).strip() == "the old farmer sold 12 fish"


def test_half_mask_is_the_original_bug(tokenizer):
    row = encode(tokenizer, build_prompt(slot_text(K)), "the old farmer sold 12 fish", "half", K, 256)
    supervised = [i for i, label in zip(row.ids, row.labels) if label != -100]
    assert tokenizer.eos_token_id not in row.ids  # never taught to stop
    assert len(supervised) == len(row.ids) - len(row.ids) // 2
    assert len(supervised) > len(row.target_ids)  # the prompt's tail is supervised


def test_training_and_inference_prompts_are_one(tokenizer):
    train = encode_many(tokenizer, [build_prompt(slot_text(K))], ["the boy lost 7 cups"], "target", K, 256)[0]
    infer = encode_many(tokenizer, [build_prompt(slot_text(K))], ["the boy lost 7 cups"], "none", K, 256)[0]
    assert train.ids[: len(infer.ids)] == infer.ids and train.slot_positions == infer.slot_positions
    assert build_prompt(slot_text(K), "drift_infer") != build_prompt(slot_text(K))


def test_foreign_script_inflates_decoder_tokens(tokenizer):
    pairs = synthetic_pairs(50, seed=1, lexicon_seed=0)
    assert bb.count_tokens(tokenizer, [p.foreign for p in pairs]) > 3 * bb.count_tokens(tokenizer, [p.english for p in pairs])


# ----------------------------------------------------------------------------- slots and injection


def bridge(dim=16, gate_clamp=0.7):
    torch.manual_seed(0)
    return SlotBridge(dim, K, 50, gate_init=0.5, gate_clamp=gate_clamp)


def test_injection_changes_only_the_k_rows():
    embeds = torch.randn(2, 12, 16)
    positions = torch.tensor([[3, 5, 7, 9], [3, 5, 7, 9]])
    slots = torch.randn(2, K, 16)
    out = inject(embeds, slots, positions)
    changed = (out != embeds).any(-1)
    assert changed.sum() == 2 * K and changed[:, [3, 5, 7, 9]].all()
    assert torch.equal(out[0, positions[0]], slots[0])
    assert torch.equal(slot_inputs(embeds, slots, positions, "ablated"), embeds)
    assert torch.equal(slot_inputs(embeds, slots, positions, "zeros")[:, positions[0]], torch.zeros(2, K, 16))
    assert torch.equal(slot_inputs(embeds, slots, positions, "shuffled")[1, positions[1]], slots[0])


def test_gate_boost_one_is_identity_and_boost_keeps_the_norm():
    b = bridge()
    v = torch.randn(3, 16)
    assert torch.equal(b(v), b(v, gate_boost=1.0))
    s = b.scale(v)
    a = b.adapter(s)
    boosted = s + 2.0 * (a - s)
    boosted = boosted * s.norm(dim=-1, keepdim=True) / boosted.norm(dim=-1, keepdim=True)
    assert torch.allclose(boosted.norm(dim=-1), s.norm(dim=-1))
    assert not torch.allclose(b(v, gate_boost=2.0), b(v))


def test_one_gate_clamp_for_training_and_inference():
    b = bridge()
    v = torch.randn(3, 16)
    train_out = b.train()(v)
    assert torch.equal(train_out, b.eval()(v))  # the same class and clamp in both modes
    # the original's 0.4 at inference is a different function, since tanh(0.5) = 0.46 > 0.4
    assert b.adapter.gate_value().item() == pytest.approx(0.4621, abs=1e-4)
    assert b.adapter.gate_value(0.4).item() == pytest.approx(0.4)
    assert not torch.allclose(b(v, clamp=0.4), b(v))


def test_usage_hinge_signs():
    helps = (torch.tensor(1.0), torch.tensor(3.0))  # slots help: injected 1 nat, ablated 3
    hurts = (torch.tensor(3.0), torch.tensor(1.0))
    assert usage_hinge(*helps, "paper", 0.5) == 0.0  # no penalty when the slots help by more than the margin
    assert usage_hinge(*hurts, "paper", 0.5) == pytest.approx(2.5)
    assert usage_hinge(*helps, "repo", 0.0) == pytest.approx(2.0)  # the original penalises helpful slots
    assert usage_hinge(*hurts, "repo", 0.0) == 0.0
    injected = torch.tensor(1.0, requires_grad=True)
    usage_hinge(injected, torch.tensor(3.0), "repo", 0.0).backward()
    assert injected.grad < 0  # minimising it pushes the injected NLL up


# ----------------------------------------------------------------------------- data


def test_synthetic_pairs_are_deterministic_khmer_script_with_numbers():
    a, b = synthetic_pairs(200, 3, 0), synthetic_pairs(200, 3, 0)
    assert a == b and len({p.english for p in a}) == 200
    for pair in a:
        assert " " not in pair.foreign and all(0x1780 <= ord(c) <= 0x17F9 for c in pair.foreign)
        number = next(w for w in pair.english.split() if w.isdigit())
        assert "".join(KHMER_DIGITS[int(d)] for d in number) in pair.foreign
    train, dev = split_pairs(a, 150, 50, 17, 256)
    assert len(train) == 150 and len(dev) == 50 and not {p.english for p in train} & {p.english for p in dev}


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"english": "a", "foreign": "b"}\n{"english": "c"}\n', "row 2: missing key 'foreign'"),
        (b"", "empty"),
        (b'{"english": "a", "foreign": "\xff\xfe"}\n', "row 1: not UTF-8"),
        (b'{"english": "a", "foreign": "b"}\nnot json\n', "row 2: not JSON"),
    ],
)
def test_bad_parallel_files_name_the_file_and_row(tmp_path, content, message):
    path = tmp_path / "en-km.jsonl"
    path.write_bytes(content)
    with pytest.raises(PairsError, match=message) as error:
        validate_jsonl(path)
    assert str(path) in str(error.value)


def test_parallel_jsonl_is_read_with_datasets(tmp_path):
    path = tmp_path / "en-km.jsonl"
    rows = [{"english": "hello", "foreign": "សួស្តី"}, {"english": "", "foreign": "x"}, {"english": "one", "foreign": "មួយ"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    pairs = read_jsonl_pairs(path)
    assert [(p.english, p.foreign) for p in pairs] == [("hello", "សួស្តី"), ("one", "មួយ")]


# ----------------------------------------------------------------------------- round trips


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("decoder")
    spec = LlinkDecoder(**profile_values("llink.backbones.decoder", hidden_size=16, intermediate_size=32, num_layers=1,
                                         num_heads=2, num_kv_heads=1, max_positions=128, initializer_range=0.1))
    bb.save_backbone(bb.build_tiny_decoder(spec, tokenizer, seed=0), tokenizer, folder)
    return folder


def test_special_rows_snapshot_restore(tiny_decoder):
    model, tok = bb.load_decoder(str(tiny_decoder))
    rows = bb.snapshot_rows(model, tok, K)
    assert list(rows) == bb.reserved_tokens(K)  # all 3+K rows, not only the original's 3
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_()
    bb.restore_rows(model, tok, rows)
    assert all(torch.equal(row, bb.snapshot_rows(model, tok, K)[t]) for t, row in rows.items())
    fresh, _ = bb.load_frozen_decoder("tiny", "tiny", None, tiny_decoder, rows)
    assert all(torch.equal(row, bb.snapshot_rows(fresh, tok, K)[t]) for t, row in rows.items())


def test_stage_b_checkpoint_reloads_to_the_same_logits(tiny_decoder, tmp_path):
    from peft import PeftModel

    from stages.lib.llink.finetune import attach_lora, save_lora

    model, tok = bb.load_decoder(str(tiny_decoder))
    lora = attach_lora(model, LlinkLora(**profile_values("llink.stage_b.lora")), seed=0)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    lora.eval()
    batch = collate([encode(tok, build_prompt(slot_text(K)), "the boy lost 7 cups", "target", K, 128)], tok.pad_token_id)
    before = lora(input_ids=batch["input_ids"]).logits
    save_lora(lora, tmp_path / "lora")
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    base, _ = bb.load_decoder(str(tiny_decoder))
    after = PeftModel.from_pretrained(base, tmp_path / "lora").eval()(input_ids=batch["input_ids"]).logits
    assert torch.allclose(before, after, atol=1e-6)
