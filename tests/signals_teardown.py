"""A SIGTERM or SIGHUP to any pytest process unwinds it like Ctrl-C, so the fixtures' own
teardown stops the brokers, workers and Prometheus they started (each in a session of its
own, which a signal to pytest's process group does not reach). Later signals are ignored, so
a second one cannot cut the teardown short (SIGKILL still ends everything at once).

Without it pytest died at once and left them running (measured: a SIGTERM to a plain pytest
run left its broker). Under xdist the controller also passes the signal on to its children:
with the handler in the workers but nothing passed on, a SIGTERM to the controller alone
still left both workers' brokers running 36 s later in one run, so the workers now unwind at
once whatever xdist does when its controller stops."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def children(pid: int) -> list[int]:
    """The live direct children of ``pid`` (from /proc; none where there is no /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(stat.parent.name))
    return out


def _unwind(signum: int, frame: FrameType | None) -> None:
    for sig in SIGNALS:  # once: a second signal (a group's, or passed on) must not cut the
        signal.signal(sig, signal.SIG_IGN)  # teardown short
    for child in children(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)
    raise KeyboardInterrupt(f"signal {signum}: stopping what the tests started")


def install() -> None:
    for sig in SIGNALS:
        signal.signal(sig, _unwind)
