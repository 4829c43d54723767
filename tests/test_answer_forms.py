"""Each messy answer form parses under exactly the extractors its kind says (stages/lib/answer_forms.py)."""

import random
from collections import Counter

import pytest

from stages.lib import answer_forms
from stages.lib.extractors import (
    SIB200_CATEGORIES, XNLI_LABELS, belebele_choice, csqa_choice, sib200_refined, sib200_strict, xnli_refined,
    xnli_strict,
)

LANGS = ("en", "zh", "es", "ur")
EXTRACTORS = {
    "xnli": (xnli_strict, xnli_refined, XNLI_LABELS),
    "sib200": (sib200_strict, sib200_refined, SIB200_CATEGORIES),
    "csqa": (csqa_choice, csqa_choice, "ABCDE"),
    "belebele": (belebele_choice, belebele_choice, "ABCD"),
}


def cases():
    for benchmark, (_, _, golds) in EXTRACTORS.items():
        for lang in LANGS:
            for kind in answer_forms.KINDS:
                for gold in golds:
                    text = answer_forms.form(benchmark, kind, gold, lang)
                    if text is not None:
                        yield benchmark, lang, kind, gold, text


@pytest.mark.parametrize("benchmark, lang, kind, gold, text", list(cases()))
def test_each_form_parses_as_its_kind_says(benchmark, lang, kind, gold, text):
    strict, refined, _ = EXTRACTORS[benchmark]
    expected = {
        "clean": (gold, gold), "formatted": (gold, gold), "refined": (None, gold),
        "hedge": (strict(text), None), "failure": (None, None),
    }[kind]
    assert (strict(text), refined(text)) == expected, text
    if kind == "hedge":
        assert strict(text) is not None, text


def test_every_language_has_forms_that_split_the_extractors():
    for lang in LANGS:
        kinds = Counter(kind for b, l, kind, _, _ in cases() if l == lang and b in ("xnli", "sib200"))
        # English prompts drew the fewest messy answers in the published outputs
        assert kinds["refined"] >= (2 if lang == "en" else 4) and kinds["failure"] >= 4, (lang, kinds)


def test_draw_follows_the_language_and_wording_weights():
    rng = random.Random(0)

    def clean_share(lang, first_wording):
        return sum(answer_forms.draw("xnli", "neutral", lang, rng, first_wording) == "neutral" for _ in range(2000)) / 2000

    assert clean_share("zh", True) < 0.45 < clean_share("en", True)
    assert clean_share("en", False) < clean_share("en", True) - 0.2  # the other wordings draw messier answers


def test_a_kind_with_no_form_is_left_out_of_the_draw():
    rng = random.Random(1)
    # an XNLI answer has no hedge form, and English neutral no refined one: never the bare label in their stead
    weights = {"en": {"clean": 0.0, "formatted": 0.0, "refined": 0.5, "hedge": 0.5, "failure": 0.0}}
    assert {answer_forms.draw("xnli", "contradiction", "en", rng, weights=weights) for _ in range(50)} == {"contradictions"}
    weights = {"en": {"clean": 0.1, "formatted": 0.0, "refined": 0.9, "hedge": 0.0, "failure": 0.0}}
    assert {answer_forms.draw("xnli", "neutral", "en", rng, weights=weights) for _ in range(50)} == {"neutral"}


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind 'tidy'"):
        answer_forms.form("xnli", "tidy", "neutral", "en")


@pytest.mark.parametrize("logit_scale", [0.0625, 1.0])
def test_answer_loss_equals_the_models_own_labelled_loss(logit_scale):
    """pretrain's loss skips the LM head on prompt positions; it must still be the model's own loss."""
    import torch

    from stages.base import build_model
    from stages.lib.pretrain import answer_loss

    model = build_model({"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 64,
                         "logit_scale": logit_scale, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}, 50, 7)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 50, (3, 12), generator=generator)
    mask = torch.ones_like(input_ids)
    mask[0, :2] = 0
    labels = torch.full_like(input_ids, -100)
    labels[:, 9:] = input_ids[:, 9:]
    labels[1, 5:] = input_ids[1, 5:]
    ours = answer_loss(model, input_ids, mask, labels)
    theirs = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    labels[:, 9:] = -100
    labels[1, 5:] = -100
    labels[2, 11] = input_ids[2, 11]
    assert not torch.allclose(answer_loss(model, input_ids, mask, labels), ours)  # it reads the labels it is given
