"""The language packs load, validate, and reject what would break the transpiler."""

from __future__ import annotations

import builtins
import keyword
from pathlib import Path

import pytest

from stages.lib.langpacks import (
    BUILTIN_EXCEPTIONS,
    BUILTIN_FUNCTIONS,
    PackError,
    identifier_form,
    load_pack,
    load_path,
)

LANGS = ("zh", "es", "ur")
PHASES = ("phase2", "phase3")


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_pack_loads_with_exact_categories(phase, lang):
    pack = load_pack(phase, lang)
    assert pack.lang == lang and pack.name == f"{phase}/{lang}"
    assert list(pack.keywords) == keyword.kwlist
    assert set(pack.builtins) == set(BUILTIN_FUNCTIONS) and len(pack.builtins) == 71
    assert set(pack.exceptions) == set(BUILTIN_EXCEPTIONS) and len(pack.exceptions) == 69
    assert set(pack.reserved_words) == {"self", "cls"}
    assert len(pack.forward) == 35 + 71 + 69
    assert len(pack.reverse) == len(pack.forward)  # injective
    assert len(pack.sha256) == 64


@pytest.mark.parametrize("lang", LANGS)
def test_forms_are_safe_identifiers(lang):
    pack = load_pack("phase3", lang)
    forms = list(pack.forward.values()) + list(pack.reserved_words.values())
    assert len(set(forms)) == len(forms)
    english = set(pack.forward) | set(pack.reserved_words)
    for form in forms:
        assert form.isidentifier() and not keyword.iskeyword(form)
        assert not form.endswith("_") and form not in english


def test_builtin_tables_match_this_interpreter():
    exceptions = {n for n, o in vars(builtins).items() if isinstance(o, type) and issubclass(o, BaseException)}
    assert set(BUILTIN_EXCEPTIONS) == exceptions
    for name in BUILTIN_FUNCTIONS:
        obj = getattr(builtins, name)
        assert callable(obj) and not (isinstance(obj, type) and issubclass(obj, BaseException))


def test_known_legesher_words_are_kept():
    zh, ur = load_pack("phase3", "zh"), load_pack("phase3", "ur")
    assert (zh.keywords["if"], zh.keywords["return"], zh.keywords["def"], zh.keywords["False"]) == (
        "如果", "返回", "定义", "假")
    assert ur.keywords["def"] == "تعریف" and ur.keywords["assert"] == "تصدیق"
    assert load_pack("phase2", "ur").keywords["def"] == "تعریف"


@pytest.mark.parametrize(
    "value, form",
    [
        ("si no, si", "si_no_si"),
        ("Error de E/S", "Error_de_E_S"),
        ("  no local ", "no_local"),
        ("ورنہ اگر", "ورنہ_اگر"),
        ("دعویٰ", "دعوی"),  # the combining superscript alef is dropped
        ("کچھ\u200cنہیں", "کچھنہیں"),  # ZWNJ is a format character: dropped
        ("ｌｅｎｇｔｈ", "length"),  # NFKC
        ("3 en raya", "n_3_en_raya"),
        ("__import__", "import"),
        ("如果", "如果"),
    ],
)
def test_identifier_rule(value, form):
    assert identifier_form(value) == form


def test_phase2_inherits_phase3_and_hashes_both():
    p2, p3 = load_pack("phase2", "zh"), load_pack("phase3", "zh")
    assert p2.forward == p3.forward and p2.reserved_words == p3.reserved_words
    assert p2.sha256 != p3.sha256
    assert "0.5.1" in p2.stands_in_for and "0.7.3" in p3.stands_in_for


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _zh_text() -> str:
    return (Path(load_pack.__code__.co_filename).parent / "phase3" / "zh.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "old, new, where, words",
    [
        ("  len: 长度\n", "  len: 列表\n", "builtins.list", "already used by builtins.len"),
        ("  pass: 略过\n", "  pass: 'pass'\n", "keywords.pass", "keyword"),
        ("  abs: 绝对值\n", "  abs: 'abs'\n", "builtins.abs", "equals its English key"),
        ("  abs: 绝对值\n", "  abs: 'print'\n", "builtins.abs", "English key"),
        ("  abs: 绝对值\n", "  abs: '!!'\n", "builtins.abs", "empty"),
        ("  abs: 绝对值\n", "", "builtins.abs", "missing"),
        ("  abs: 绝对值\n", "  abs: 绝对值\n  match: 匹配\n", "builtins.match", "not a key"),
        ("  abs: 绝对值\n", "  abs: 绝对值\n  abs: 绝对\n", "abs", "duplicate"),
    ],
)
def test_invalid_pack_names_file_and_key(tmp_path, old, new, where, words):
    text = _zh_text()
    assert old in text
    path = _write(tmp_path, "zh.yaml", text.replace(old, new))
    with pytest.raises(PackError) as err:
        load_path(path, "tmp/zh")
    assert str(path) in str(err.value) and where in str(err.value) and words in str(err.value)


def test_trailing_underscores_are_stripped_by_the_rule(tmp_path):
    path = _write(tmp_path, "zh.yaml", _zh_text().replace("  if: 如果\n", "  if: 如果__\n"))
    assert load_path(path, "tmp/zh").keywords["if"] == "如果"


def test_inheriting_pack_overrides_and_rejects_unknown_keys(tmp_path):
    _write(tmp_path, "base.yaml", _zh_text())
    child = _write(tmp_path, "child.yaml",
                   "lang: zh\nstands_in_for: x\ninherits: base.yaml\noverrides: {keywords: {if: 若}}\n")
    pack = load_path(child, "tmp/child")
    assert pack.keywords["if"] == "若" and pack.keywords["else"] == "否则"
    bad = _write(tmp_path, "bad.yaml",
                 "lang: zh\nstands_in_for: x\ninherits: base.yaml\noverrides: {keywords: {iff: 若}}\n")
    with pytest.raises(PackError, match=r"bad\.yaml: overrides\.keywords\.iff"):
        load_path(bad, "tmp/bad")
    loop = _write(tmp_path, "loop.yaml", "lang: zh\nstands_in_for: x\ninherits: loop.yaml\noverrides: {}\n")
    with pytest.raises(PackError, match="cycle"):
        load_path(loop, "tmp/loop")


def test_numerals_are_not_a_category(tmp_path):
    path = _write(tmp_path, "zh.yaml", _zh_text() + "numerals:\n  '1': 一\n")
    with pytest.raises(PackError, match="numerals: unknown top-level key"):
        load_path(path, "tmp/zh")


def test_bad_pack_name_is_rejected():
    with pytest.raises(PackError):
        load_pack("../phase3", "zh")
