"""tools.dvc_fast_lock: dvc.lock read by the C parser, written by DVC, to the same bytes."""

import io

import pytest

from dvc.utils.serialize import _yaml

from tools import dvc_fast_lock


def test_the_repository_lock_dumps_back_to_its_own_bytes(repo_root):
    text = (repo_root / "dvc.lock").read_text(encoding="utf-8")
    fast = _yaml.parse_yaml(text, "dvc.lock", typ="safe")
    out = io.StringIO()
    _yaml._dump(fast, out)  # DVC's own lock writer
    assert out.getvalue() == text
    assert fast == _yaml.parse_yaml(text, "dvc.lock", typ="rt")  # the same content as DVC's own read


def test_only_dvc_lock_is_read_by_the_fast_parser(monkeypatch):
    monkeypatch.setattr(_yaml, "parse_yaml_for_update", _yaml.parse_yaml_for_update)  # undone after the test
    assert dvc_fast_lock.install() and dvc_fast_lock.install()  # a second install changes nothing
    text = "# a comment DVC keeps\nstages:\n  a:\n    cmd: echo\n"
    assert type(_yaml.parse_yaml_for_update(text, "sub/dvc.lock")) is dict
    kept = _yaml.parse_yaml_for_update(text, "dvc.yaml")
    assert type(kept) is not dict and kept.ca.comment  # ruamel's round-trip map, comment attached
    buffer = io.StringIO()
    _yaml._dump(kept, buffer)
    assert buffer.getvalue().startswith("# a comment DVC keeps")


def test_an_inactive_patch_is_announced_and_dvc_still_runs(monkeypatch, capsys):
    monkeypatch.delattr(_yaml, "parse_yaml_for_update")  # DVC moved the function: undone after the test
    assert dvc_fast_lock.install() is False
    with pytest.raises(SystemExit) as exited:  # `dvc --version` exits through argparse
        dvc_fast_lock.main(["--version"])
    assert exited.value.code in (0, None)
    captured = capsys.readouterr()
    assert "3.67.1" in captured.out  # DVC ran, unpatched
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and "tools.dvc_fast_lock is inactive" in warning[0] and dvc_fast_lock.PATCHED in warning[0]


def test_an_active_patch_says_nothing(monkeypatch, capsys):
    monkeypatch.setattr(_yaml, "parse_yaml_for_update", _yaml.parse_yaml_for_update)
    with pytest.raises(SystemExit):
        dvc_fast_lock.main(["--version"])
    assert capsys.readouterr().err == ""
