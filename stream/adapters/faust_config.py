"""The Faust settings every app here shares: the worker's, and the bench's Faust baselines', so
they are measured under the same configuration; the bundled broker's workarounds stay off
against Apache Kafka (DESIGN.md "Known limits of the bundled broker")."""

from __future__ import annotations

import contextlib
from typing import Any

from stream.adapters.event_time import scheduling
from stream.adapters.faust_security import faust_credentials
from stream.settings import Settings


def _patch_faust_fetch_wait() -> None:
    """Faust hard-codes fetch_max_wait_ms=1500 for worker consumers.

    On the bundled broker a waiting fetch only returns after that wait, so every event would
    take ~1.5 s; we set the app's own value (``Settings.fetch_max_wait_ms``) on the consumer
    before it starts. Harmless on Apache Kafka, where fetches return as soon as data arrives.
    """
    from faust.transport.drivers import aiokafka as driver

    if getattr(driver.AIOKafkaConsumerThread, "_recstream_patched", False):
        return
    original = driver.AIOKafkaConsumerThread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait_ms = getattr(self.app, "recstream_fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = wait_ms
        return consumer

    driver.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]
    driver.AIOKafkaConsumerThread._recstream_patched = True  # type: ignore[attr-defined]


def _patch_faust_table_wait() -> None:
    """Faust's table manager sleeps 1 s before it lets the consumer subscribe, so tables that
    agents declare while starting are registered in time. An app with no Faust tables (the
    worker's state is a ChangelogStore) opts out with ``recstream_no_tables``: 1 s less of every
    worker's start-up, on the path to joining the group. Apps with tables keep the wait."""
    from faust.tables.manager import TableManager

    if getattr(TableManager, "_recstream_patched", False):
        return
    original = TableManager.on_start

    async def on_start(self: Any) -> None:
        if not (getattr(self.app, "recstream_no_tables", False) and len(self) == 0):
            await original(self)
            return
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    TableManager.on_start = on_start  # type: ignore[method-assign]
    TableManager._recstream_patched = True  # type: ignore[attr-defined]


def _patch_faust_monitor() -> None:
    """Faust adds its ``Monitor`` sensor to every app: four calls an event (message in, stream
    event in and out, message out) that keep counters and deques of timings, ~4.7 µs an event
    here (micro-benchmark, 5.7 against 1.0 µs for the same calls with no sensor). Only Faust's
    web views read them (``/stats``, ``/metrics``), so an app with the web off, as every app
    here is, drops it from its sensors: the worker's own metrics are Prometheus's
    (``adapters.metrics``). An app with the web on keeps it."""
    from faust.app.base import App

    if getattr(App, "_recstream_monitor_patched", False):
        return
    original = App.on_init_dependencies

    def on_init_dependencies(self: Any) -> Any:
        dependencies = original(self)  # (adds the monitor to the sensors)
        if not self.conf.web_enabled:
            with contextlib.suppress(KeyError):
                self.sensors.remove(self.monitor)
        return dependencies

    App.on_init_dependencies = on_init_dependencies  # type: ignore[method-assign]
    App._recstream_monitor_patched = True  # type: ignore[attr-defined]


def _tansu_workarounds(settings: Settings) -> dict[str, Any]:
    """Bundled-broker only (DESIGN.md "Known limits"); none of this applies to Apache Kafka."""
    return {
        # (No one-record-per-batch producer here: state is not a Faust Table, and our own
        # changelog recovery reads the end from fetch responses, which are right on Tansu.)
        # Tansu holds every JoinGroup until half the session timeout has passed (1 s steps).
        "broker_rebalance_timeout": settings.rebalance_timeout_s,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": 1.0,
    }


def faust_config(settings: Settings, flavour: str) -> dict[str, Any]:
    """Faust settings every app here shares (the worker, and the bench's Faust baselines, so
    they are measured under the same configuration); callers add store and web port."""
    _patch_faust_fetch_wait()
    _patch_faust_table_wait()
    _patch_faust_monitor()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    tuning: dict[str, Any] = (
        _tansu_workarounds(settings) if flavour == "tansu" else {"producer_linger_ms": 2}
    )
    if settings.event_time_order:  # a fetch's records oldest first (see event_time.py)
        backlog = 2 * settings.batch_max if settings.backlog_by_partition else None
        tuning["ConsumerScheduler"] = scheduling(backlog)
    return {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "broker_credentials": faust_credentials(settings.kafka_security),
        "datadir": str(settings.data_dir / "faust"),
        "autodiscover": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": 0.5,
        "web_enabled": False,
        "web_host": "127.0.0.1",
        **tuning,
    }
