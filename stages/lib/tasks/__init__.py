"""Benchmarks as data: one YAML file per benchmark beside this module.

Each file says where the benchmark comes from (the Hub at a pinned revision, or a local
fixture in the Hub's layout), the dataset's own name for each language (``langs``), how a
dataset row fills a template (``fields``: template field -> column path, dots into structs
and lists), how the gold answer is normalised, which keys a published result row carries
(``row_keys``), the candidate answers for log-likelihood scoring (``choices``) and the prompt
templates of each protocol (phase3: template1/template2; phase2: one wording), byte-exact.

Optional keys: ``n_examples`` (the items per language the published study counted, which its
statistics use), ``extract_as`` (a benchmark whose extractors score this one's answers, e.g. a new
A-D multiple-choice benchmark scored as ``belebele``; default: its own name).

This module only reads those files: adding a benchmark or a language is an edit of a YAML
file and of params, not of code. A benchmark defined outside this folder is found through
``evaluate.tasks_dirs`` (params), searched before it. The few gold normalisations are named functions here,
because they are code the YAML picks by name.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from stages.lib.errors import StageError
from stages.lib.extractors import normalize_number_string

HERE = Path(__file__).parent
SPLIT_KINDS = ("eval", "train")  # the evaluation items, and the training part kept apart for the tiny base


class BenchmarkError(StageError, ValueError):
    """Bad benchmark data or definition; the message names the benchmark, language and field."""


# --------------------------------------------------------------------------- gold normalisation


def _label_map(value: Any, spec: Mapping) -> str:
    if isinstance(value, str):
        return value.strip().lower()  # the original: a string label is taken as it is, lower-cased
    mapping = {int(k): v for k, v in spec["map"].items()}
    return mapping[int(value)]


def _number_to_letter(value: Any, spec: Mapping) -> str:
    return "ABCDEFGH"[int(str(value).strip()) - 1]


GOLD_NORMALISERS: dict[str, Callable[[Any, Mapping], str | None]] = {
    "label_map": _label_map,  # XNLI: 0/1/2 -> entailment/neutral/contradiction
    "upper": lambda value, spec: str(value).strip().upper(),  # X-CSQA answerKey
    "lower": lambda value, spec: str(value).strip().lower(),  # SIB-200 category
    "number_to_letter": _number_to_letter,  # Belebele correct_answer_num "1".."4" -> A..D
    "number_string": lambda value, spec: normalize_number_string(value),  # MGSM
}


# --------------------------------------------------------------------------- the definition


@dataclass(frozen=True)
class Example:
    """One benchmark item: the template fields, the normalised gold and the published row keys."""

    fields: dict[str, str]
    gold: str | None
    row: dict[str, str]


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    langs: dict[str, str]
    source: dict
    fields: dict[str, str]
    gold: dict
    row_keys: dict[str, str]
    templates: dict[str, dict[str, dict[str, str]]]
    choices: tuple[str, ...] | None = None
    source_overrides: dict = field(default_factory=dict)
    path: Path = HERE
    n_examples: int | None = None
    extract_as: str = ""

    @property
    def extractor_key(self) -> str:
        """The benchmark name the extractor registry knows this one's answers under."""
        return self.extract_as or self.name

    def code(self, lang: str) -> str:
        try:
            return self.langs[lang]
        except KeyError:
            raise BenchmarkError(f"{self.name}: no language {lang!r} (has {', '.join(self.langs)}) in {self.path}") from None

    def source_for(self, lang: str) -> dict:
        return self.source_overrides.get(lang, self.source)

    def wordings(self, protocol: str) -> list[str]:
        try:
            return sorted(self.templates[protocol])
        except KeyError:
            raise BenchmarkError(f"{self.name}: no templates for protocol {protocol!r} in {self.path}") from None

    def template(self, protocol: str, wording: str, instr_lang: str) -> str:
        try:
            return self.templates[protocol][wording][instr_lang]
        except KeyError:
            raise BenchmarkError(
                f"{self.name}: no template {protocol}/{wording}/{instr_lang} in {self.path}"
            ) from None

    def render(self, protocol: str, wording: str, instr_lang: str, fields: Mapping[str, str]) -> str:
        """The prompt, exactly: the template with each ``{field}`` replaced by the row's value."""
        text = self.template(protocol, wording, instr_lang)
        out = []
        for literal, name, spec, conversion in string.Formatter().parse(text):
            out.append(literal)
            if name is None:
                continue
            if spec or conversion or name not in fields:
                raise BenchmarkError(
                    f"{self.name}: template {protocol}/{wording}/{instr_lang} needs field {name!r}, "
                    f"which the row does not have (has {', '.join(sorted(fields))})"
                )
            out.append(fields[name])
        return "".join(out)

    def normalise_gold(self, value: Any) -> str | None:
        return GOLD_NORMALISERS[self.gold["normalise"]](value, self.gold)


_REQUIRED = ("name", "title", "langs", "source", "fields", "gold", "row_keys", "templates")


@lru_cache(maxsize=None)
def load_benchmark(name: str, directory: Path = HERE) -> Benchmark:
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.yaml"))
        raise BenchmarkError(f"benchmark {name!r}: no definition {path} (known: {', '.join(known)})")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        raise BenchmarkError(f"{path}: missing key(s) {', '.join(missing)}")
    extra = set(doc) - set(_REQUIRED) - {"choices", "source_overrides", "about", "n_examples", "extract_as"}
    if extra:
        raise BenchmarkError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")
    if doc["name"] != name:
        raise BenchmarkError(f"{path}: name {doc['name']!r} does not match the file name")
    if doc["gold"].get("normalise") not in GOLD_NORMALISERS:
        raise BenchmarkError(
            f"{path}: gold.normalise {doc['gold'].get('normalise')!r} is not one of {', '.join(GOLD_NORMALISERS)}"
        )
    choices = doc.get("choices")
    return Benchmark(
        name=name,
        title=doc["title"],
        langs=dict(doc["langs"]),
        source=doc["source"],
        fields=dict(doc["fields"]),
        gold=doc["gold"],
        row_keys=dict(doc["row_keys"]),
        templates=doc["templates"],
        choices=tuple(choices) if choices else None,
        source_overrides=doc.get("source_overrides") or {},
        path=path,
        n_examples=doc.get("n_examples"),
        extract_as=doc.get("extract_as") or "",
    )


def find_benchmark(name: str, dirs: Iterable[Path | str] = ()) -> Benchmark:
    """The definition of ``name`` from the first of ``dirs`` that has it, else from this folder."""
    for directory in dirs:
        if (Path(directory) / f"{name}.yaml").is_file():
            return load_benchmark(name, Path(directory))
    return load_benchmark(name)


def benchmark_extractor(extractor: str, benchmark: str, dirs: Iterable[Path | str] = ()):
    """The ``extractor`` that scores ``benchmark`` (through its ``extract_as``), or a KeyError naming both."""
    from stages.lib import extractors

    try:
        return extractors.get_extractor(extractor, benchmark)
    except KeyError:
        try:
            key = find_benchmark(benchmark, tuple(dirs)).extractor_key
        except BenchmarkError:
            raise KeyError(f"no {extractor!r} extractor for {benchmark!r} and no definition of it") from None
        return extractors.get_extractor(extractor, key)


def all_benchmarks(directory: Path = HERE) -> list[Benchmark]:
    """Every definition of a folder, by name."""
    return [load_benchmark(path.stem, Path(directory)) for path in sorted(Path(directory).glob("*.yaml"))]


def paper_n_examples(directory: Path = HERE) -> dict[str, int]:
    """Benchmark -> the items per language the published study counted (the definitions' ``n_examples``)."""
    return {b.name: b.n_examples for b in all_benchmarks(directory) if b.n_examples is not None}


def titles(directory: Path = HERE) -> dict[str, str]:
    """Benchmark -> its name in tables and figures (the definitions' ``title``)."""
    return {b.name: b.title for b in all_benchmarks(directory)}


def definition_files(names: Iterable[str], dirs: Iterable[Path | str] = ()) -> list[Path]:
    return [find_benchmark(name, tuple(dirs)).path for name in names]


# --------------------------------------------------------------------------- reading rows


def _dig(row: Mapping, dotted: str, where: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        try:
            value = value[int(part)] if isinstance(value, (list, tuple)) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise BenchmarkError(f"{where}: field {dotted!r} is missing from the row (at {part!r})") from None
    return value


def _load_dataset(spec: dict, *, where: str, fixtures_dir: Path | None, fixture_key: str, code: str):
    import datasets

    if fixtures_dir is not None:
        fixture = spec.get(fixture_key)
        if fixture is None:
            raise BenchmarkError(f"{where}: no {fixture_key} in the definition")
        path = Path(fixtures_dir) / fixture["path"].format(code=code)
        if not path.is_file():
            raise BenchmarkError(f"{where}: benchmark file {path} does not exist")
        if fixture.get("format", "parquet") == "csv":
            return datasets.load_dataset(
                "csv",
                data_files=str(path),
                split="train",
                delimiter=fixture.get("delimiter", ","),
                column_names=fixture.get("column_names"),
                keep_default_na=False,
            )
        return datasets.load_dataset("parquet", data_files=str(path), split="train")
    hub = spec["hub"]
    revision = hub.get("revision")
    if not revision or revision == "PIN-ME":
        raise BenchmarkError(f"{where}: the Hub revision is not pinned (revision: {revision!r}); pin it first")
    if hub.get("format") == "csv":
        return datasets.load_dataset(
            "csv",
            data_files=hub["url"].format(code=code),
            split="train",
            delimiter=hub.get("delimiter", ","),
            column_names=hub.get("column_names"),
            keep_default_na=False,
        )
    config = hub.get("config")
    return datasets.load_dataset(
        hub["path"], config.format(code=code) if config else None, split=hub["split"], revision=revision
    )


def load_examples(
    benchmark: Benchmark,
    lang: str,
    *,
    fixtures_dir: Path | None,
    split: str = "eval",
    n_samples: int | None = None,
) -> list[Example]:
    """The items of one benchmark in one language, in dataset order.

    ``fixtures_dir`` set: the local fixture (smoke); None: the Hub at the pinned revision.
    ``split``: ``eval`` (what is scored) or ``train`` (the fixtures' training part).
    ``n_samples``: the first N rows, as the original's ``--n_samples`` (smoke runs).
    """
    if split not in SPLIT_KINDS:
        raise ValueError(f"split must be one of {SPLIT_KINDS}")
    code = benchmark.code(lang)
    where = f"{benchmark.name} [{lang}]"
    spec = benchmark.source_for(lang)
    fixture_key = "fixture" if split == "eval" else "train_fixture"
    if split == "train" and fixtures_dir is None:
        raise BenchmarkError(f"{where}: the training part exists only in the fixtures")
    dataset = _load_dataset(spec, where=where, fixtures_dir=fixtures_dir, fixture_key=fixture_key, code=code)
    rename = spec.get("rename") or {}
    wanted = spec.get("filter")
    examples = []
    for index, raw in enumerate(dataset):
        row = {rename.get(k, k): v for k, v in raw.items()}
        if wanted is not None:
            if wanted["column"] not in row:
                raise BenchmarkError(f"{where}: filter column {wanted['column']!r} is missing (row {index})")
            if row[wanted["column"]] != wanted["equals"].format(code=code):
                continue
        at = f"{where} row {index}"
        fields = {name: str(_dig(row, path, at)) for name, path in benchmark.fields.items()}
        gold_value = _dig(row, benchmark.gold["column"], at)
        try:
            gold = benchmark.normalise_gold(gold_value)
        except (KeyError, ValueError, IndexError) as error:
            raise BenchmarkError(f"{at}: gold {benchmark.gold['column']}={gold_value!r} cannot be normalised ({error})") from None
        examples.append(
            Example(fields=fields, gold=gold, row={key: fields[source] for key, source in benchmark.row_keys.items()})
        )
        if n_samples is not None and len(examples) >= n_samples:
            break
    if not examples:
        raise BenchmarkError(f"{where}: no rows (file empty, or the filter matched nothing)")
    return examples
