"""tools.dvc_fast_lock: dvc.lock read by the C parser and written by the C emitter, to DVC's own bytes."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dvc.utils.serialize import _yaml

from tools import dvc_fast_lock


@pytest.fixture
def undone(monkeypatch):
    """What install() patches, put back after the test."""
    from dvc.dependency import param

    for owner, name in ((_yaml, "parse_yaml_for_update"), (_yaml, "_dump"), (param, "read_param_file")):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    return monkeypatch


def test_the_repository_lock_dumps_back_to_its_own_bytes(repo_root):
    text = (repo_root / "dvc.lock").read_text(encoding="utf-8")
    fast = _yaml.parse_yaml(text, "dvc.lock", typ="safe")
    out = io.StringIO()
    _yaml._dump(fast, out)  # DVC's own lock writer
    assert out.getvalue() == text
    assert fast == _yaml.parse_yaml(text, "dvc.lock", typ="rt")  # the same content as DVC's own read


def test_only_dvc_lock_is_read_by_the_fast_parser(undone):
    assert dvc_fast_lock.install() and dvc_fast_lock.install()  # a second install changes nothing
    text = "# a comment DVC keeps\nstages:\n  a:\n    cmd: echo\n"
    assert type(_yaml.parse_yaml_for_update(text, "sub/dvc.lock")) is dict
    kept = _yaml.parse_yaml_for_update(text, "dvc.yaml")
    assert type(kept) is not dict and kept.ca.comment  # ruamel's round-trip map, comment attached
    buffer = io.StringIO()
    _yaml._dump(kept, buffer)
    assert buffer.getvalue().startswith("# a comment DVC keeps")


def test_an_inactive_patch_is_announced_and_dvc_still_runs(undone, capsys):
    monkeypatch = undone
    monkeypatch.delattr(_yaml, "parse_yaml_for_update")  # DVC moved the function: undone after the test
    assert dvc_fast_lock.install() is False
    with pytest.raises(SystemExit) as exited:  # `dvc --version` exits through argparse
        dvc_fast_lock.main(["--version"])
    assert exited.value.code in (0, None)
    captured = capsys.readouterr()
    assert "3.67.1" in captured.out  # DVC ran, unpatched
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and "tools.dvc_fast_lock is inactive" in warning[0] and dvc_fast_lock.PATCHED in warning[0]


def test_an_active_patch_says_nothing(undone, capsys):
    with pytest.raises(SystemExit):
        dvc_fast_lock.main(["--version"])
    assert capsys.readouterr().err == ""


# --- the write side: libyaml's emitter where it writes DVC's bytes, DVC's own dumper elsewhere -------------------

def dvc_text(data) -> str:
    out = io.StringIO()
    # DVC's lock writer: where a test has installed the patches, the original they keep (undone after the test)
    getattr(_yaml._dump, "dvc_dump", _yaml._dump)(data, out)
    return out.getvalue()


def fast_text(data) -> str:
    out = io.StringIO()
    dvc_fast_lock.dump_lock(data, out, _yaml._dump)
    return out.getvalue()


def test_the_repository_lock_is_written_to_its_own_bytes_by_the_c_emitter(repo_root):
    text = (repo_root / "dvc.lock").read_text(encoding="utf-8")
    data = _yaml.parse_yaml(text, "dvc.lock", typ="safe")
    assert fast_text(data) == text
    first = next(iter(data["stages"].values()))
    assert dvc_fast_lock._c_dump({"stages": {"x": first}}) is not None  # the C emitter writes most of it


# Strings where quoting, escaping or folding decide the bytes: paths with @ and :, leading digits, md5s that read
# as numbers, YAML 1.1-only booleans (plain in 1.2), unicode, control characters, quotes, long lines.
TRICKY = ["train@run-1", "a:b", "a: b", "@x", "0123", "1e5", "12345678901234567890123456789012", "4e10", "0x1F",
          "1_000", ".inf", "-.5", "yes", "no", "on", "null", "~", "", " lead", "trail ", "#c", "a #c", "- x", "?",
          "中文/路径.parquet", "é\u00a0x", "\x07bell", "\ufeffbom", "tab\tin", 'dq"x', "back\\slash", "x'y", "'",
          "two\nlines", "😀", "%x", "!tag", "&a", "*a", "|", ">", "{a}", "[a]", "a,b", "=", "<<", "`x`",
          "python -m stages.train --run condition-5-zh-5k-c4ai-aya-expanse-32b-seed42",
          "metrics/reparsed/phase3/conditions/condition-5-zh-5k-c4ai-aya-expanse-32b/seed42",
          "word " * 30, "x" * 90, "@" + "y" * 85, "a: " + "b" * 80, "中" * 50]
SCALARS = [None, True, False, 0, -7, 10**20, 1.5, -0.0, 1e-05, 1e300, float("inf"), float("nan")]


def lock_like(rng, strings) -> dict:
    def value(depth):
        roll = rng.random()
        if depth > 2 or roll < 0.5:
            return rng.choice(strings + SCALARS)
        if roll < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(strings): value(depth + 1) for _ in range(rng.randint(0, 3))}

    stages = {}
    for _ in range(rng.randint(1, 4)):
        stages[rng.choice(strings)] = {
            "cmd": rng.choice(strings),
            "deps": [{"path": rng.choice(strings), "hash": "md5", "md5": rng.choice(strings), "size": 3}
                     for _ in range(rng.randint(0, 3))],
            "params": {"params.yaml": {rng.choice(strings): value(0) for _ in range(rng.randint(0, 4))}},
        }
    return {"schema": "2.0", "stages": stages}


def test_tricky_strings_and_values_are_written_to_dvcs_bytes():
    import random

    rng = random.Random(18)
    words = TRICKY + ["".join(rng.choice("ab1e.-:@ #'\"\\中\t/_") for _ in range(rng.randint(1, 12)))
                      for _ in range(200)]
    for _ in range(150):
        data = lock_like(rng, words)
        assert fast_text(data) == dvc_text(data), data
    every = {"schema": "2.0", "stages": {word: {"cmd": word, "outs": [{"path": word, "md5": word}],
                                                "params": {"p.yaml": {word: [word, *SCALARS]}}} for word in TRICKY}}
    assert fast_text(every) == dvc_text(every)


def test_shared_objects_and_other_types_go_to_dvcs_dumper():
    shared = ["a", "b"]
    data = {"schema": "2.0", "stages": {"s": {"deps": shared, "outs": shared}}}
    assert "&id001" in dvc_text(data) and fast_text(data) == dvc_text(data)
    from collections import OrderedDict

    ordered = {"schema": "2.0", "stages": {"s": OrderedDict(cmd="x", deps=("a", "b"))}}
    assert dvc_fast_lock._plain(ordered, set()) is False and fast_text(ordered) == dvc_text(ordered)


def test_only_dvc_lock_is_written_by_the_c_emitter(undone, tmp_path):
    monkeypatch = undone
    calls = []
    monkeypatch.setattr(dvc_fast_lock, "dump_lock", lambda data, stream, dvc_dump: calls.append(data))
    assert dvc_fast_lock.install()
    for name in ("dvc.yaml", "dvc.lock"):
        _yaml.dump_yaml(tmp_path / name, {"stages": {"a": {"cmd": "echo"}}})
    assert len(calls) == 1 and (tmp_path / "dvc.yaml").read_text() == "stages:\n  a:\n    cmd: echo\n"


REAL_DVC_YAML = """\
stages:
  make:
    foreach: ${items}
    do:
      cmd: python make.py "${item.out}" "${item.text}"
      deps:
        - make.py
      params:
        - items
        - knobs
      outs:
        - ${item.out}
"""
MAKE = "import sys, pathlib\np = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True)\n" \
       "p.write_text(sys.argv[2], encoding='utf-8')\n"
REAL_PARAMS = """\
items:
  '1e5': {out: "out/1e5@x:y.txt", text: "1e5"}
  '0123': {out: "out/0123.txt", text: "12345678901234567890123456789012"}
  zh: {out: "out/中文 路径.txt", text: "中文"}
  long: {out: "out/condition-5-zh-5k-c4ai-aya-expanse-32b-seed42/metrics/reparsed/phase3/x.txt", text: "a: b"}
knobs: {none: null, tiny: 1.0e-05, flag: yes, quote: "it's", md5ish: "4e10", sweep: [0.5, null, 1e300]}
"""


def test_a_real_dvc_repro_writes_the_same_lock_as_plain_dvc(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    analytics = false\n    no_scm = true\n")
    (tmp_path / "dvc.yaml").write_text(REAL_DVC_YAML)
    (tmp_path / "make.py").write_text(MAKE)
    (tmp_path / "params.yaml").write_text(REAL_PARAMS, encoding="utf-8")
    fast = subprocess.run([sys.executable, "-m", "tools.dvc_fast_lock", "repro"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert fast.returncode == 0 and "inactive" not in fast.stderr, fast.stderr
    lock = (tmp_path / "dvc.lock").read_text(encoding="utf-8")
    assert "make@1e5:" in lock and "中文" in lock and "'4e10'" in lock  # the tricky strings reached the lock
    plain = subprocess.run([sys.executable, "-m", "dvc", "repro", "--force"], cwd=tmp_path,
                           capture_output=True, text=True, env={**os.environ, "LDR_FAST_LOCK": "0"})  # DVC as it is
    assert plain.returncode == 0 and plain.stdout.count("Running stage") == 4, plain.stdout + plain.stderr
    assert (tmp_path / "dvc.lock").read_text(encoding="utf-8") == lock  # DVC rewrote every entry: same bytes


def test_no_dump_in_dvc_leaves_both_unpatched_and_announced(undone, capsys):
    monkeypatch = undone
    monkeypatch.delattr(_yaml, "_dump")  # DVC renamed its dumper: undone after the test
    assert dvc_fast_lock.install() is False
    assert not getattr(_yaml.parse_yaml_for_update, "fast_lock", False)
    with pytest.raises(SystemExit):
        dvc_fast_lock.main(["--version"])
    assert dvc_fast_lock.PATCHED_DUMP in capsys.readouterr().err


# --- params: parsed once per file state, keys looked up directly, the same values as DVC's ------------------------

def test_params_reads_give_dvcs_values_and_reparse_an_edited_file(undone, repo_root, tmp_path):
    import os

    import yaml
    from dvc.dependency import param
    from dvc.fs import LocalFileSystem

    original = param.read_param_file
    assert dvc_fast_lock.install() and param.read_param_file is not original
    fs = LocalFileSystem()
    path = str(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text((repo_root / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    lock = yaml.safe_load((repo_root / "dvc.lock").read_text(encoding="utf-8"))
    keys = sorted({key for entry in lock["stages"].values() for key in entry.get("params", {}).get("params.yaml", {})})
    keys += ["subset.sou?ce", "fetch.sources.cod[e].limit", "no.such.key", "fetch.sources.code.limit", "grid", "scale.x", "fetch..x"]
    for _ in range(2):  # parsed, then from the kept parse
        fast = param.read_param_file(fs, path, keys, flatten=True)
        assert fast == original(fs, path, keys, flatten=True) and len(fast) > 100  # every key a stage lists
    again = param.read_param_file(fs, path, ["fetch", "fetch.filters"], flatten=True)
    assert again["fetch"]["filters"] is again["fetch.filters"]  # shared within one read, as DVC's parse has it
    assert again["fetch"] is not fast["fetch.filters"] and again["fetch"] == original(fs, path, ["fetch"], True)["fetch"]
    edited = (tmp_path / "params.yaml").read_text(encoding="utf-8").replace("scale: smoke", "scale: paper")
    (tmp_path / "params.yaml").write_text(edited, encoding="utf-8")
    os.utime(path, ns=(1, 1))
    assert param.read_param_file(fs, path, ["scale"], flatten=True) == {"scale": "paper"}
    assert param.read_param_file(fs, path, None) == original(fs, path, None)  # whole file: DVC's own read


# --- the parsed lock kept by its sha256, in the process and in .dvc/tmp -------------------------------------------

def test_a_written_lock_parses_back_to_the_data_that_was_kept_for_it():
    import random

    rng = random.Random(7)
    for _ in range(60):
        data = lock_like(rng, TRICKY)
        if dvc_fast_lock._plain(data, set()):
            parsed = _yaml.parse_yaml(fast_text(data), "dvc.lock", typ="safe")
            assert repr(parsed) == repr(data)  # types and values, nan included


def test_the_kept_parse_is_used_only_for_the_same_text(undone, tmp_path, monkeypatch):
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    path = str(tmp_path / "dvc.lock")
    text = "schema: '2.0'\nstages:\n  a:\n    cmd: echo\n    params:\n      params.yaml:\n        n:\n"
    assert dvc_fast_lock.install()
    first = _yaml.parse_yaml(text, path)
    assert (tmp_path / ".dvc" / "tmp" / dvc_fast_lock.CACHE_NAME).is_file()
    dvc_fast_lock._kept.clear()  # as a new process: from .dvc/tmp
    calls = []
    copy = dvc_fast_lock._copy
    monkeypatch.setattr(dvc_fast_lock, "_copy", lambda kept: calls.append(1) or copy(kept))
    second = _yaml.parse_yaml(text, path)
    assert second == first and second is not first and calls  # a copy: DVC edits what it reads
    edited = text.replace("echo", "echo 2")
    assert _yaml.parse_yaml(edited, path)["stages"]["a"]["cmd"] == "echo 2"  # another text: parsed
    (tmp_path / ".dvc" / "tmp" / dvc_fast_lock.CACHE_NAME).write_bytes(b"not marshal")
    dvc_fast_lock._kept.clear()
    assert _yaml.parse_yaml(text, path) == first  # an unreadable cache: parsed again
    assert _yaml.parse_yaml("a: 1\n", str(tmp_path / "dvc.yaml")) == {"a": 1}  # other files: DVC's parse


@pytest.mark.parametrize("argv, expected", [
    (["/venv/bin/python", "/venv/bin/dvc", "repro"], True),  # the console script, as its shebang runs it
    (["python", "-m", "dvc", "status"], True),
    (["python", "-u", "-m", "dvc"], True),
    (["C:\\venv\\python.exe", "C:\\venv\\Scripts\\dvc.exe", "repro"], True),
    (["python", "-m", "pytest", "dvc"], False),
    (["python", "-m", "dvc_data"], False),
    (["python", "make.py", "dvc"], False),
    (["python", "-c", "import dvc"], False),
    (["python"], False),
])
def test_the_dvc_command_is_told_apart(argv, expected):
    assert dvc_fast_lock.is_dvc_command(argv) is expected


def _a_project(folder: Path) -> Path:
    """Two plain stages (no string the C emitter leaves to DVC's dumper, so the fast dump keeps its parse)."""
    (folder / ".dvc").mkdir(parents=True)
    (folder / ".dvc" / "config").write_text("[core]\n    analytics = false\n    no_scm = true\n")
    (folder / "dvc.yaml").write_text(
        "stages:\n  make:\n    foreach: ${items}\n    do:\n      cmd: python make.py ${item.out} ${item.text}\n"
        "      params: [items]\n      deps: [make.py]\n      outs: [\"${item.out}\"]\n")
    (folder / "make.py").write_text(MAKE)
    (folder / "params.yaml").write_text("items:\n  a: {out: out/a.txt, text: a}\n  b: {out: out/b.txt, text: b}\n")
    return folder


def test_plain_dvc_gets_the_patches_through_the_installed_pth(tmp_path):
    """The README's `dvc repro`, not `python -m tools.dvc_fast_lock`: the .pth setup.py installs starts them."""
    site_packages = [Path(p) for p in sys.path if p.endswith("site-packages")]
    if not any((folder / "language_decoded_repro-dvc.pth").is_file() for folder in site_packages):
        assert not os.environ.get("CI"), "CI installed the project with `pip install -e .` but no .pth is in site-packages"
        pytest.skip("this environment was not installed with `pip install -e .` (no language_decoded_repro-dvc.pth "
                    "in site-packages), as the README's commands install it")
    dvc = Path(sys.executable).parent / "dvc"
    patched, unpatched = _a_project(tmp_path / "patched"), _a_project(tmp_path / "unpatched")
    env = {key: value for key, value in os.environ.items() if key != "LDR_FAST_LOCK"}
    for project, extra in ((patched, {}), (unpatched, {"LDR_FAST_LOCK": "0"})):
        ran = subprocess.run([str(dvc), "repro"], cwd=project, capture_output=True, text=True, env={**env, **extra})
        assert ran.returncode == 0 and ran.stdout.count("Running stage") == 2, ran.stdout + ran.stderr
        assert "inactive" not in ran.stderr, ran.stderr
    # the patched DVC kept its parse of the lock it wrote for the next process; DVC as it is keeps none
    assert (patched / ".dvc" / "tmp" / dvc_fast_lock.CACHE_NAME).is_file()
    assert not (unpatched / ".dvc" / "tmp" / dvc_fast_lock.CACHE_NAME).exists()
    assert (patched / "dvc.lock").read_bytes() == (unpatched / "dvc.lock").read_bytes()  # and the same bytes


def test_an_ordered_entry_is_written_as_dvc_writes_it_and_kept_for_the_next_read(undone, tmp_path):
    """DVC's entry for the stage it ran is an OrderedDict, which its dumper writes as a dict."""
    from collections import OrderedDict

    lock = {"schema": "2.0", "stages": {"a": OrderedDict(cmd="echo a", outs=[OrderedDict(path="o", hash="md5")])}}
    assert fast_text(lock) == dvc_text(lock)
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    assert dvc_fast_lock.install()
    out = io.StringIO()
    out.name = str(tmp_path / "dvc.lock")
    _yaml._dump(lock, out)
    dvc_fast_lock._kept.clear()  # as the next process: from .dvc/tmp
    assert dvc_fast_lock._recall(out.name, out.getvalue()) == {"schema": "2.0", "stages": {"a": {
        "cmd": "echo a", "outs": [{"path": "o", "hash": "md5"}]}}}


def test_prepared_entries_leave_a_dump_only_the_changed_entry_to_write(undone, tmp_path, monkeypatch):
    """What tools.repro does before it forks a stage's DVC: that DVC writes one entry, the rest are known."""
    lock = {"schema": "2.0", "stages": {f"s{i}": {"cmd": f"python make.py {i}", "deps": [
        {"path": f"in/{i}", "hash": "md5", "md5": f"{i:032x}", "size": i}], "outs": [
        {"path": f"out/{i}-" + "x" * 90, "hash": "md5", "md5": f"{i:032x}", "size": i}]} for i in range(5)}}
    (tmp_path / "dvc.lock").write_text(dvc_text(lock), encoding="utf-8")  # the long paths: DVC's dumper folds them
    assert dvc_fast_lock.install()
    dvc_fast_lock._ENTRIES.clear()
    dvc_fast_lock.prepare_entries(tmp_path / "dvc.lock")
    written = []
    uncached = dvc_fast_lock._piece_uncached
    monkeypatch.setattr(dvc_fast_lock, "_piece_uncached", lambda chain, *rest: written.append(chain) or uncached(chain, *rest))
    lock["stages"]["s3"]["cmd"] = "python make.py 3 --again"
    out = io.StringIO()
    dvc_fast_lock.dump_lock(lock, out, _yaml._dump.dvc_dump)
    assert [chain for chain in written if len(chain) == 2] == [["stages", "s3"]]
    assert out.getvalue() == dvc_text(lock)
