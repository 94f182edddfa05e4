"""`stop_groups`: every child signalled at once, the stubborn ones killed, none left behind."""

from __future__ import annotations

import subprocess
import sys

from stream.broker import stop_groups

_IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)
_OBEYS_TERM = "import time; print('up', flush=True); time.sleep(60)"


def _spawn(code: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"up\n"  # its handler is installed
    return process


def test_a_child_that_obeys_and_one_that_ignores_sigterm_are_both_stopped() -> None:
    obeys, ignores = _spawn(_OBEYS_TERM), _spawn(_IGNORES_TERM)
    stop_groups([obeys, ignores], timeout=0.5)
    assert obeys.returncode == -15  # SIGTERM was enough
    assert ignores.returncode == -9  # escalated to SIGKILL after the shared grace


def test_children_already_gone_are_fine() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()
    stop_groups([done], timeout=0.5)
    assert done.returncode == 0
