"""A private Prometheus server for tests and dashboard rendering, plus a tiny HTTP API client.

Runs the ``prometheus`` binary (Debian's package, ``make prometheus``) with its own config, port
and storage in a temporary directory — never the system service — and stops it by PID. The
client speaks the documented HTTP API (``/api/v1/query``, ``/api/v1/query_range``,
``/api/v1/rules``) so a dashboard's PromQL is evaluated by the real engine, not re-implemented.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.broker import free_port, stop_group

ROOT = Path(__file__).resolve().parents[1]
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"


class PrometheusError(RuntimeError):
    """The API answered with an error (bad PromQL, unreachable server, …)."""


@dataclass
class PrometheusAPI:
    """Client for one Prometheus base URL (``http://host:port``)."""

    url: str
    timeout: float = 10.0

    def _get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = f"{self.url.rstrip('/')}{path}?{query}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400/422 carry the PromQL error as JSON
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant vector (or scalar, wrapped as one sample) at ``at`` (default: now)."""
        data = self._get("/api/v1/query", query=expr, time=at)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        return list(data["result"])

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health and last evaluation error."""
        groups = self._get("/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(
            "the prometheus binary is missing: run `make prometheus` (Debian package)"
        )
    return found


def scrape_config(
    targets: Sequence[str], interval_s: float = 1.0, rules: Path | None = ALERT_RULES
) -> dict[str, Any]:
    """A config scraping ``targets`` as job ``recstream`` (the job the alert rules name)."""
    every = f"{round(interval_s * 1000)}ms"  # Prometheus durations take no fractions
    config: dict[str, Any] = {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "scrape_configs": [
            {"job_name": "recstream", "static_configs": [{"targets": list(targets)}]}
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    return config


@dataclass
class LocalPrometheus:
    process: subprocess.Popen[bytes]
    api: PrometheusAPI
    workdir: Path

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID (its own process group), SIGKILL if it does not stop in time."""
        stop_group(self.process, signal.SIGTERM, timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")


def start_prometheus(config: dict[str, Any], timeout: float = 30.0) -> LocalPrometheus:
    """Start ``prometheus`` on a free local port with storage in a fresh temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="recstream-prometheus-"))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    port = free_port()
    with open(workdir / "prometheus.log", "ab") as log:
        process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LocalPrometheus(process, PrometheusAPI(f"http://127.0.0.1:{port}"), workdir)
    deadline = time.monotonic() + timeout
    while not server.api.ready():
        if process.poll() is not None or time.monotonic() > deadline:
            text = server.log()[-3000:]
            server.stop()
            raise RuntimeError(f"prometheus did not become ready:\n{text}")
        time.sleep(0.1)
    return server


@contextlib.contextmanager
def running_prometheus(config: dict[str, Any]) -> Iterator[LocalPrometheus]:
    server = start_prometheus(config)
    try:
        yield server
    finally:
        server.stop()
