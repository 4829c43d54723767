"""Retrieval, generation and diagnostic metrics of LLINK: pure functions, no model state."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from sacrebleu.metrics import CHRF
from torch.nn import functional as F

from stages.lib.llink.data import content_words, numbers


def retrieval(queries: torch.Tensor, keys: torch.Tensor) -> dict[str, float]:
    """Foreign -> English retrieval by cosine: row i of ``queries`` should find row i of ``keys``.
    R@1/5/10, MRR, mean rank, and chance R@1 (1/N)."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    gold = sim.diagonal().unsqueeze(1)
    ranks = (sim > gold).sum(1).double() + 1.0  # ties count in the item's favour
    n = sim.shape[0]
    return {
        "r_at_1": (ranks <= 1).double().mean().item(),
        "r_at_5": (ranks <= 5).double().mean().item(),
        "r_at_10": (ranks <= 10).double().mean().item(),
        "mrr": (1.0 / ranks).mean().item(),
        "mean_rank": ranks.mean().item(),
        "chance_r_at_1": 1.0 / n,
        "n": n,
    }


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """Corpus chrF, as papers report it (n-gram statistics summed over the rows, then one F-score;
    not the mean of sentence scores), with sacrebleu's defaults: character 1- to 6-grams without
    whitespace, no word n-grams, beta 2, case kept. Returns the score in [0, 100] and sacrebleu's
    signature, which names those settings and its version."""
    metric = CHRF()
    score = metric.corpus_score(list(hypotheses), [list(references)]).score
    return score, str(metric.get_signature())


def _recall(wanted: list[str], got: list[str]) -> float | None:
    if not wanted:
        return None
    pool = Counter(got)
    hits = 0
    for word in wanted:
        if pool[word] > 0:
            pool[word] -= 1
            hits += 1
    return hits / len(wanted)


def generation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """Exact match, content-word recall and number recall averaged over the rows; corpus chrF
    over all of them, with its signature."""
    exact, hyps, refs, content, nums = [], [], [], [], []
    for hyp, ref in zip(hypotheses, references):
        hyp, ref = " ".join(hyp.split()), " ".join(ref.split())
        exact.append(float(hyp == ref))
        hyps.append(hyp)
        refs.append(ref)
        c = _recall(content_words(ref), content_words(hyp))
        if c is not None:
            content.append(c)
        n = _recall(numbers(ref), numbers(hyp))
        if n is not None:
            nums.append(n)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    chrf, signature = corpus_chrf(hyps, refs)
    return {"exact_match": mean(exact), "chrf": chrf, "chrf_signature": signature,
            "content_word_recall": mean(content), "number_recall": mean(nums), "n": len(exact)}


def diversity(vectors: torch.Tensor) -> dict[str, float]:
    """The original's ``test_batch``: mean and max pairwise cosine (upper triangle) and norms; a mean
    near 1 means every input maps to the same vector (collapse)."""
    unit = F.normalize(vectors.float(), dim=-1)
    sim = unit @ unit.T
    upper = sim[torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)]
    norms = vectors.float().norm(dim=-1)
    return {"mean_pairwise_cos": upper.mean().item(), "max_pairwise_cos": upper.max().item(),
            "mean_norm": norms.mean().item(), "min_norm": norms.min().item(), "max_norm": norms.max().item()}


def inverse_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of every index under descending ``scores``, by an inverse permutation in O(V)
    (the original's ``ordering.index`` was O(V^2))."""
    order = scores.argsort(descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, len(order) + 1)
    return ranks


def rounded(value, digits: int = 6):
    """JSON floats rounded the same way everywhere, so reruns write the same bytes."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value
