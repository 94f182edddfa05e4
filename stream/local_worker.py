"""Run `recstream worker` as a child process (demo, `eval --live`, tests) and know when it is up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from stream.broker import free_port, stop_group
from stream.readiness import is_serving


def spawn_worker(env: Mapping[str, str], log_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start a worker in its own process group, output appended to ``log_path``."""
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker", "--web-port", str(free_port()), *extra],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float = 120.0,
    since: int = 0,
    progress: bool = False,
) -> None:
    """Block until the worker serves: Faust's group joined, its user partitions assigned and
    its engine prepared (all logged since ``since``, in any order; ``stream.readiness``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        text = log_path.read_text(errors="replace")[since:]
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{text[-4000:]}")
        if is_serving(text):
            if progress:
                print(file=sys.stderr)
            return
        if progress:
            print(
                f"\r  waiting for the worker to join its group and prepare its engine ... "
                f"{time.monotonic() - start:4.0f}s",
                end="",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.1)
    raise TimeoutError(f"worker not ready after {timeout:.0f}s (see {log_path})")


def stop_worker(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> int:
    """Signal the worker's process group; SIGKILL if it does not stop in time."""
    return stop_group(process, sig, timeout)


def scrape_metrics(port: int, names: Sequence[str] = ()) -> dict[str, float] | None:
    """Every sample of one worker's /metrics as {'name{labels}': value}; None while it is down.

    ``names`` restricts the answer to those metrics (prometheus_client's ``name[]`` filter):
    a full scrape costs the worker ~5-10 ms of GIL, so frequent pollers ask for what they read.
    """
    query = "?" + urllib.parse.urlencode([("name[]", n) for n in names]) if names else ""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
