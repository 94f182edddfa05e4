"""compose.yaml, Dockerfile and deploy/ validated statically (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from stream.cli import build_parser
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = ("kafka", "qdrant", "worker-1", "worker-2", "prometheus", "grafana")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def workers() -> dict[str, Any]:
    return {n: s for n, s in services().items() if s.get("command", [None, None])[1] == "worker"}


def interpolate(value: Any) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment."""
    return re.sub(r"\$\{[A-Z_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {k: interpolate(v) for k, v in service.get("environment", {}).items()}


def known_env_vars() -> set[str]:
    source = (ROOT / "stream" / "settings.py").read_text()
    return set(re.findall(r'"(RECSTREAM_[A-Z_]+)"', source))


def port_of(url: str) -> int:
    parsed = urlparse(url if "//" in url else f"kafka://{url}")
    assert parsed.port is not None, url
    return parsed.port


def test_compose_runs_apache_kafka_and_two_workers_with_valid_settings() -> None:
    assert services()["kafka"]["image"].startswith("apache/kafka:")
    assert "KRaft" in (ROOT / "compose.yaml").read_text()
    assert "controller" in services()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert len(workers()) >= 2
    for svc in workers().values():
        settings = Settings.from_env(env_of(svc))  # parses: integers are integers, …
        assert settings.kafka_bootstrap == "kafka:9092" and settings.kafka_flavour == "kafka"
        assert settings.qdrant_url == "http://qdrant:6333" and settings.qdrant_api_key is None
        assert set(settings.feeds) == {"for_you", "deals_for_you", "new_for_you"}
        args = build_parser().parse_args(svc["command"][1:])
        assert args.command == "worker"


def test_every_recstream_variable_anywhere_is_a_real_setting() -> None:
    known = known_env_vars()
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\b(RECSTREAM_[A-Z_]+)\b", text))
    assert used and used <= known, used - known
    for svc in services().values():
        names = {k for k in svc.get("environment", {}) if k.startswith("RECSTREAM_")}
        assert names <= known, names - known


def test_the_initialiser_creates_everything_once_before_the_workers_start() -> None:
    init = services()["init"]
    assert build_parser().parse_args(init["command"][1:]).command == "init"
    assert init["restart"] == "no"
    assert {"kafka", "qdrant"} <= set(init["depends_on"])
    for svc in workers().values():
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        # same topics, partitions and Qdrant as the topics/collection init created
        assert env_of(svc) == env_of(init)
    partitions = Settings.from_env(env_of(init)).partitions
    assert partitions >= len(workers())


def test_every_long_running_service_has_a_healthcheck_volume_and_resource_limits() -> None:
    declared = set(compose()["volumes"])
    for name in LONG_RUNNING:
        svc = services()[name]
        assert svc["healthcheck"]["test"], name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    for svc in workers().values():
        data = [v for v in svc["volumes"] if v.endswith(":/data")]
        assert len(data) == 1  # state survives restarts; one volume per replica
    worker_volumes = [tuple(s["volumes"]) for s in workers().values()]
    assert len(set(worker_volumes)) == len(worker_volumes)


def test_every_worker_ranks_from_one_shared_lookup_folder() -> None:
    roots = set()
    for svc in workers().values():
        settings = Settings.from_env(env_of(svc))
        root = str(settings.lookup_root)
        volume = {dst: src for src, dst in (v.split(":")[:2] for v in svc["volumes"])}.get(root)
        assert volume is not None, "the lookup folder must be a mounted volume"
        assert not root.startswith(str(settings.data_dir))  # not inside the per-replica volume
        roots.add((volume, root))
    assert len(roots) == 1  # one volume, one path: N workers load the same published version


def test_ports_agree_across_workers_prometheus_grafana_and_dependencies() -> None:
    prom_dir = ROOT / services()["prometheus"]["volumes"][0].split(":")[0]
    prom = yaml.safe_load((prom_dir / "prometheus.yml").read_text())
    for rule_file in prom["rule_files"]:
        assert (prom_dir / rule_file).is_file()
    targets = {
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    expected = set()
    for name, svc in workers().items():
        port = env_of(svc)["RECSTREAM_METRICS_PORT"]
        expected.add(f"{name}:{port}")
        assert f"127.0.0.1:{port}/metrics" in " ".join(svc["healthcheck"]["test"])
    assert targets == expected
    settings = Settings.from_env(env_of(next(iter(workers().values()))))
    kafka = services()["kafka"]["environment"]
    assert f"PLAINTEXT://:{port_of(settings.kafka_bootstrap)}" in kafka["KAFKA_LISTENERS"]
    for published in services()["kafka"]["ports"]:  # host clients: the advertised listener
        host_port, container_port = published.split(":")
        assert f"://:{container_port}" in kafka["KAFKA_LISTENERS"]
        assert f"localhost:{host_port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert settings.qdrant_url is not None
    assert f"{port_of(settings.qdrant_url)}:" in services()["qdrant"]["ports"][0]
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert urlparse(datasource["url"]).hostname == "prometheus"
    assert f"{urlparse(datasource['url']).port}:" in services()["prometheus"]["ports"][0]


def test_grafana_mounts_provisioning_and_dashboards_where_the_provider_looks() -> None:
    grafana = services()["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/recstream.yml").read_text()
    )["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    relative = Path(home).relative_to(provider["options"]["path"])
    assert (ROOT / "deploy/grafana/dashboards" / relative).is_file()


def test_image_is_multi_stage_non_root_and_ships_the_schemas() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "COPY stream" in dockerfile and "COPY --from=build" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    schemas_dest = re.search(r"^COPY schemas (\S+)", dockerfile, re.M)
    assert schemas_dest is not None
    assert f"RECSTREAM_SCHEMAS_DIR={schemas_dest.group(1)}" in dockerfile


def test_the_image_caches_compiled_kernels_where_its_user_may_write() -> None:
    """The installed package is root's; the kernels' cache goes under the data volume."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", dockerfile)
    data = re.search(r"RECSTREAM_DATA_DIR=(\S+)", dockerfile)
    volume = re.search(r'^VOLUME \["(\S+)"\]', dockerfile, re.M)
    assert cache and data and volume
    assert Path(cache.group(1)).is_relative_to(data.group(1).rstrip(" \\"))
    assert Path(cache.group(1)).is_relative_to(volume.group(1))
