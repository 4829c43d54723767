"""Reverse transpilation restores every file of the smoke corpus byte for byte."""

from __future__ import annotations

import ast

import pytest

from stages.lib.params import load_params
from stages.lib.sources.installed import iter_installed
from stages.lib.transpiler import load_pack, transpile_batch


def smoke_corpus_texts(repo_root) -> list[str]:
    """Every parseable UTF-8 .py file of every smoke source, whatever the filters keep."""
    params = load_params(repo_root / "params.yaml")
    texts = []
    for key, source in params.fetch.sources.items():
        for file in iter_installed(source, key):
            try:
                text = file.data.decode("utf-8")
                ast.parse(text)
            except (UnicodeDecodeError, SyntaxError, ValueError):
                continue
            texts.append(text)
    return texts


@pytest.fixture(scope="module")
def corpus(request):
    from tests.conftest import ROOT

    texts = smoke_corpus_texts(ROOT)
    assert len(texts) > 800
    return texts


@pytest.mark.parametrize("lang", ["zh", "es", "ur"])
def test_whole_smoke_corpus_round_trips_exactly(corpus, lang):
    pack = load_pack("phase3", lang)
    results = transpile_batch(corpus, pack, scope="aware", verify_roundtrip=True, workers=2)
    failures = [(i, r.reason, r.detail) for i, r in enumerate(results) if not r.ok]
    assert failures == []
    assert sum(r.n_translated for r in results) > 10 * len(corpus)
    assert sum(r.text != t for r, t in zip(results, corpus)) > 0.95 * len(corpus)
