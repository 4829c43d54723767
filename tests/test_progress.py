"""Progress bars in a terminal only, and the stages' messages through `logging` under the stage's name."""

from __future__ import annotations

import io
import sys

from stages.lib.progress import progress, progress_enabled, stage_logger


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the bar is drawn into it."""

    def isatty(self) -> bool:
        return True


def test_progress_is_off_unless_stderr_is_a_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled(Terminal()) and not progress_enabled(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(Terminal())


def test_no_bar_in_a_log_a_bar_in_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    assert list(progress(range(3), desc="fetch@code", unit="file")) == [0, 1, 2]  # pytest's stderr: no TTY
    assert capsys.readouterr().err == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress(range(3), desc="fetch@code", total=3, unit="file")) == [0, 1, 2]
    assert "fetch@code" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_training_bars_follow_the_terminal(monkeypatch, tmp_path):
    from stages.lib.params import Train
    from stages.train import training_arguments

    from tests.conftest import profile_values

    train = Train(**profile_values("train"))
    monkeypatch.delenv("CI", raising=False)
    assert training_arguments(train, 42, 3, tmp_path).disable_tqdm  # pytest's stderr is no terminal
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not training_arguments(train, 42, 3, tmp_path).disable_tqdm


def test_messages_carry_the_stage_name_once_on_the_current_stderr(capsys):
    stage_logger("translate@zh-5k").info("shipped %d", 8)
    stage_logger("translate@zh-5k").error("stopped")  # a second call adds no second handler
    assert capsys.readouterr().err == "translate@zh-5k: shipped 8\ntranslate@zh-5k: stopped\n"
