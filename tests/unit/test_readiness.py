"""A worker is waited for until it serves: Faust's group joined, the user partitions assigned
*and* the engine prepared, which since the engine is prepared during the joins can come in any
order."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stream.local_worker import wait_ready
from stream.readiness import ASSIGNED_LOG, READY_MARK, SERVING_LOG, is_serving

FAUST_JOINED = f"[2026-12-06 07:00:00,000] [1] [INFO] {READY_MARK} \n"
ASSIGNED = "[2026-12-06 07:00:00,100] [1] [INFO] " + ASSIGNED_LOG % [0, 1] + " \n"
JOINED = FAUST_JOINED + ASSIGNED
SERVING = "[2026-12-06 07:00:01,000] [1] [INFO] " + SERVING_LOG % 3.5 + "\n"


def test_serving_needs_every_mark_in_any_order() -> None:
    assert not is_serving(JOINED)
    assert not is_serving(SERVING)
    assert is_serving(JOINED + SERVING)
    assert is_serving(SERVING + JOINED)
    assert is_serving(ASSIGNED + SERVING + FAUST_JOINED)
    # Faust's group joined and the engine ready, but the user group not yet assigned
    assert not is_serving(FAUST_JOINED + SERVING)
    assert not is_serving(ASSIGNED + SERVING)


def test_wait_ready_waits_for_the_engine_after_the_join(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(JOINED)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:

        def prepared_later() -> None:
            time.sleep(0.5)
            with log.open("a") as f:
                f.write(SERVING)

        threading.Thread(target=prepared_later).start()
        began = time.monotonic()
        wait_ready(process, log, timeout=10)
        assert time.monotonic() - began >= 0.4  # not at the join alone
    finally:
        process.kill()
        process.wait()


def test_wait_ready_reads_only_this_start(tmp_path: Path) -> None:
    """A restarted worker appends to the same log: the last start's marks do not count."""
    log = tmp_path / "worker.log"
    log.write_text(JOINED + SERVING)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(TimeoutError):
            wait_ready(process, log, timeout=0.5, since=log.stat().st_size)
    finally:
        process.kill()
        process.wait()
