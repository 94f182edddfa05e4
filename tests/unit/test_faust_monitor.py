"""Faust's Monitor sensor is dropped from apps with the web off (its only reader)."""

from __future__ import annotations

from pathlib import Path

import faust
from faust.sensors import Monitor

from stream.adapters.faust_config import faust_config
from stream.settings import Settings


def _sensors(app: faust.App) -> list[object]:
    app.on_init_dependencies()  # where Faust adds its monitor, as a starting app does
    return list(app.sensors)


def test_an_app_with_the_web_off_runs_without_faust_monitor(tmp_path: Path) -> None:
    config = faust_config(Settings(data_dir=tmp_path), "tansu")
    assert config["web_enabled"] is False  # every app here
    app = faust.App("recstream-monitor-off", **config, store="memory://")
    assert not any(isinstance(s, Monitor) for s in _sensors(app))


def test_an_app_with_the_web_on_keeps_it_and_other_sensors_stay(tmp_path: Path) -> None:
    config = faust_config(Settings(data_dir=tmp_path), "kafka")
    web = faust.App("recstream-monitor-on", **{**config, "web_enabled": True}, store="memory://")
    assert any(isinstance(s, Monitor) for s in _sensors(web))
    own = faust.Sensor()
    app = faust.App("recstream-monitor-own", **config, store="memory://")
    app.sensors.add(own)
    assert _sensors(app) == [own]
