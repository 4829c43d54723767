"""The transpile stage and its plain CLI: gates, ledger, counters, and stdin round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import transpile
from tools.configure import render
from stages.lib.tables import CONDITION_SCHEMA, read_jsonl, read_rows, split_path, write_parquet

GOOD = "def total(items):\n    if not items:\n        return None\n    return len(items)\n"


def run_cli(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.transpile", *args], input=stdin, capture_output=True,
                          cwd=Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("lang", ["zh", "es", "ur"])
def test_stdin_cli_round_trips(lang):
    forward = run_cli("--lang", lang, "--stdin", stdin=GOOD.encode())
    assert forward.returncode == 0 and forward.stdout != GOOD.encode()
    assert b"def " not in forward.stdout and b"return" not in forward.stdout
    back = run_cli("--lang", lang, "--stdin", "--reverse", stdin=forward.stdout)
    assert back.returncode == 0 and back.stdout == GOOD.encode()


def test_stdin_cli_names_a_syntax_error():
    done = run_cli("--lang", "zh", "--stdin", stdin=b"def broken(:\n")
    assert done.returncode == 1 and b"<stdin>: syntax_error" in done.stderr


def test_stdin_cli_names_an_unknown_language():
    done = run_cli("--lang", "xx", "--stdin", stdin=GOOD.encode())
    err = done.stderr.decode()
    assert done.returncode == 2 and "--lang xx" in err and "xx.yaml" in err and "es, ur, zh" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_stdin_cli_caps_its_input_as_the_stage_does():
    done = run_cli("--lang", "zh", "--stdin", stdin=b"# " + b"x" * (1_048_576 - 2) + b"\n")
    assert done.returncode == 1 and b"too_large" in done.stderr and done.stdout == b""
    small = run_cli("--lang", "zh", "--stdin", "--max-bytes", "100", stdin=GOOD.encode())
    assert small.returncode == 0 and b"def " not in small.stdout


def row(idx: int, code: str) -> dict:
    return {"code": code, "code_en": code, "language": "en", "file_path": f"{idx:09d}_f.py", "license": "MIT", "idx": idx}


def test_stage_keeps_idx_and_counts_every_refused_file(tmp_path):
    source = tmp_path / "data" / "condition-1-en-5k"
    enormous = "x = 1\n" * (2**20 // 6 + 1)  # one byte over the 1 MiB gate
    train = [row(0, GOOD), row(1, "x=1"), row(2, "def f(:\n    pass\n"), row(3, GOOD.replace("items", "xs")),
             row(4, "a = '\x00'\n" + GOOD), row(5, ""), row(6, enormous)]
    write_parquet(split_path(source, "train"), train, CONDITION_SCHEMA)
    write_parquet(split_path(source, "validation"), [row(0, GOOD)], CONDITION_SCHEMA)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(render("smoke", "phase3")))

    args = ["--lang", "es", "--tier", "5k", "--params", str(params), "--data", str(tmp_path / "data"),
            "--metrics", str(tmp_path / "metrics"), "--workers", "1"]
    assert transpile.main(args) == 0
    out = tmp_path / "data" / "condition-2-es-5k"
    kept = read_rows(split_path(out, "train"))
    assert [r["idx"] for r in kept] == [0, 3]
    assert all(r["language"] == "es" and r["code_en"] != r["code"] for r in kept)
    ledger = {(r["split"], r["idx"]): r["reason"] for r in read_jsonl(out / "ledger.jsonl")}
    assert ledger == {("train", 1): "too_small", ("train", 2): "syntax_error", ("train", 4): "binary",
                      ("train", 5): "too_small", ("train", 6): "too_large"}
    assert all(r["file_path"] == f"{r['idx']:09d}_f.py" for r in read_jsonl(out / "ledger.jsonl"))
    stats = json.loads((tmp_path / "metrics" / "transpile-es-5k.json").read_text())["transpile"]["es-5k"]
    assert stats["train"]["input"] == 7 and stats["train"]["kept"] == 2 and stats["train"]["roundtrip_mismatch"] == 0
    assert (stats["train"]["too_small"], stats["train"]["too_large"]) == (2, 1)
    assert stats["validation"]["kept"] == 1


def test_stage_refuses_an_unlisted_language(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(render("smoke", "phase3")))
    assert transpile.main(["--lang", "fr", "--tier", "5k", "--params", str(params)]) == 2
    assert "transpile.langs" in capsys.readouterr().err
