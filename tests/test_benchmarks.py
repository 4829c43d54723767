"""Benchmarks as data: the 32 Phase 3 templates and the Phase 2 ones byte-exact, rows, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.lib.tasks import BenchmarkError, load_benchmark, load_examples

SPEC = Path(__file__).parent / "data" / "spec"
PHASE3 = ("xnli", "csqa", "sib200", "belebele")
PHASE2_NAMES = {"MGSM": "mgsm", "XNLI": "xnli", "X-CSQA": "csqa"}


PHASE3_SPEC = {
    m.group(1, 2, 3): m.group(4)
    for m in re.finditer(r"### (\w+) (template\d) (\w\w)\n```text\n(.*?)\n```", (SPEC / "prompt-templates.md").read_text(), re.S)
}
PHASE2_SPEC = {
    (PHASE2_NAMES[m.group(1)], m.group(2)): m.group(3)
    for m in re.finditer(r"#### ([\w-]+) / (\w\w)\n```text\n(.*?)\n```", (SPEC / "phase2-templates.md").read_text(), re.S)
}


def _placeholders(text: str) -> dict[str, str]:
    return {name: "{" + name + "}" for name in re.findall(r"\{(\w+)\}", text)}


def test_the_spec_has_32_phase3_and_12_phase2_templates():
    assert len(PHASE3_SPEC) == 32
    assert len(PHASE2_SPEC) == 12


@pytest.mark.parametrize("key", sorted(PHASE3_SPEC))
def test_phase3_template_is_byte_exact(key):
    bench, wording, lang = key
    benchmark = load_benchmark(bench)
    expected = PHASE3_SPEC[key]
    rendered = benchmark.render("phase3", wording, lang, _placeholders(expected))
    assert rendered == expected
    assert not rendered.endswith((" ", "\n")), "the answer cue has no trailing space or newline"


@pytest.mark.parametrize("key", sorted(PHASE2_SPEC))
def test_phase2_template_is_byte_exact(key):
    bench, lang = key
    expected = PHASE2_SPEC[key]
    assert load_benchmark(bench).render("phase2", "phase2", lang, _placeholders(expected)) == expected


def test_every_template_uses_only_fields_the_benchmark_defines():
    for name in (*PHASE3, "mgsm"):
        benchmark = load_benchmark(name)
        for protocol, wordings in benchmark.templates.items():
            for wording, langs in wordings.items():
                for lang, text in langs.items():
                    assert set(re.findall(r"\{(\w+)\}", text)) <= set(benchmark.fields), (name, protocol, wording, lang)


def test_render_substitutes_values_verbatim_even_with_braces():
    benchmark = load_benchmark("xnli")
    prompt = benchmark.render("phase3", "template1", "en", {"premise": "a {b} c", "hypothesis": "x"})
    assert "Premise: a {b} c\nHypothesis: x\nAnswer:" in prompt
    assert prompt.endswith("Answer:")


def test_a_missing_template_field_names_benchmark_language_and_field():
    with pytest.raises(BenchmarkError, match=r"xnli: template phase3/template1/ur needs field 'hypothesis'"):
        load_benchmark("xnli").render("phase3", "template1", "ur", {"premise": "p"})


def test_gold_normalisation_as_the_original():
    assert load_benchmark("xnli").normalise_gold(0) == "entailment"
    assert load_benchmark("xnli").normalise_gold(2) == "contradiction"
    assert load_benchmark("xnli").normalise_gold(" Neutral ") == "neutral"
    assert load_benchmark("csqa").normalise_gold(" b") == "B"
    assert load_benchmark("sib200").normalise_gold("Science/Technology ") == "science/technology"
    assert load_benchmark("belebele").normalise_gold("3") == "C"
    assert load_benchmark("mgsm").normalise_gold("1,000") == "1000"


def _write(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_rows_follow_the_field_paths_and_dataset_order(tmp_path):
    question = [{"stem": f"q{i}", "choices": {"label": list("ABCDE"), "text": [f"o{i}{c}" for c in "ABCDE"]}} for i in range(3)]
    _write(tmp_path / "INK-USC/xcsr/X-CSQA-zh/validation-00000-of-00001.parquet",
           pa.table({"id": ["a", "b", "c"], "lang": ["zh"] * 3, "question": question, "answerKey": ["c", "A", "E"]}))
    examples = load_examples(load_benchmark("csqa"), "zh", fixtures_dir=tmp_path)
    assert [e.fields["stem"] for e in examples] == ["q0", "q1", "q2"]
    assert examples[1].fields["E"] == "o1E"
    assert [e.gold for e in examples] == ["C", "A", "E"]
    assert examples[0].row == {"stem": "q0"}
    assert len(load_examples(load_benchmark("csqa"), "zh", fixtures_dir=tmp_path, n_samples=2)) == 2


def test_sib200_is_filtered_by_flores_code(tmp_path):
    _write(tmp_path / "mteb/sib200/default/test-00000-of-00001.parquet",
           pa.table({"index_id": [1, 1, 2], "text": ["en1", "ur1", "en2"], "category": ["travel", "travel", "Health"],
                     "lang": ["eng_Latn", "urd_Arab", "eng_Latn"]}))
    examples = load_examples(load_benchmark("sib200"), "en", fixtures_dir=tmp_path)
    assert [(e.fields["text"], e.gold) for e in examples] == [("en1", "travel"), ("en2", "health")]


def test_a_missing_column_names_benchmark_language_row_and_field(tmp_path):
    _write(tmp_path / "facebook/xnli/es/test-00000-of-00001.parquet", pa.table({"premise": ["p"], "label": [0]}))
    with pytest.raises(BenchmarkError, match=r"xnli \[es\] row 0: field 'hypothesis' is missing"):
        load_examples(load_benchmark("xnli"), "es", fixtures_dir=tmp_path)


def test_a_missing_benchmark_file_names_the_file(tmp_path):
    with pytest.raises(BenchmarkError, match=r"belebele \[ur\]: benchmark file .*urd_Arab/test-00000-of-00001.parquet does not exist"):
        load_examples(load_benchmark("belebele"), "ur", fixtures_dir=tmp_path)


def test_an_unknown_language_or_benchmark_is_named():
    with pytest.raises(BenchmarkError, match=r"xnli: no language 'fr'"):
        load_benchmark("xnli").code("fr")
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': no definition"):
        load_benchmark("mmlu")


def test_the_hub_path_refuses_an_unpinned_revision():
    with pytest.raises(BenchmarkError, match="not pinned"):
        load_examples(load_benchmark("xnli"), "en", fixtures_dir=None)
