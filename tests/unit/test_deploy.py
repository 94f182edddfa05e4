"""compose.yaml and deploy/ validated statically (no Docker engine runs on these machines)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from stream.cli import build_parser
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def known_env_vars() -> set[str]:
    source = (ROOT / "stream" / "settings.py").read_text()
    return set(re.findall(r'"(RECSTREAM_[A-Z_]+)"', source))


def test_compose_runs_apache_kafka_and_workers_with_valid_settings() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    workers = [name for name, svc in services.items() if "recstream" in str(svc.get("command"))]
    assert len(workers) >= 2
    known = known_env_vars()
    for name in workers:
        svc = services[name]
        env = {k: str(v) for k, v in svc["environment"].items()}
        assert set(env) <= known, set(env) - known
        settings = Settings.from_env(env)  # parses: integers are integers, flavour is valid
        assert settings.kafka_bootstrap == "kafka:9092" and settings.kafka_flavour == "kafka"
        assert settings.qdrant_url == "http://qdrant:6333"
        args = build_parser().parse_args(svc["command"][1:])
        assert args.command == "worker"
        assert "kafka" in svc["depends_on"]


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    services = compose()["services"]
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    expected = set()
    for name, svc in services.items():
        if "recstream" in str(svc.get("command")):
            expected.add(f"{name}:{svc['environment']['RECSTREAM_METRICS_PORT']}")
    assert targets == expected
    mounted = services["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == (ROOT / "deploy" / "prometheus" / "prometheus.yml")


def test_image_ships_the_schemas_the_worker_validates_with() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY schemas" in dockerfile and "COPY stream" in dockerfile
