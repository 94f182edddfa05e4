"""A command stopped where its own code does not catch the interrupt still exits 130 and says
so (a replay stopped between its catalog and event phases printed nothing)."""

from __future__ import annotations

import argparse
import signal

import pytest

from stream import cli
from stream.settings import Settings


def test_an_interrupt_outside_a_commands_handling_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stopped(args: argparse.Namespace, settings: Settings) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_replay", stopped)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # leave the test process's handlers
    assert cli.main(["replay", "movielens"]) == 130
    assert "recstream replay: interrupted" in capsys.readouterr().err
