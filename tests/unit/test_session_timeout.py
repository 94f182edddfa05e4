"""The bundled broker's session timeout: one setting for every group a worker joins (the Faust
group, the user group, the item group), read from the environment and refused when too short,
and never passed to Apache Kafka, whose defaults stand."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.adapters.faust_config import faust_config
from stream.adapters.group_task import group_kwargs
from stream.settings import Settings


def test_default_and_env() -> None:
    assert Settings.from_env({}).session_timeout_s == 6.0
    assert Settings.from_env({"RECSTREAM_SESSION_TIMEOUT_S": "4.5"}).session_timeout_s == 4.5


@pytest.mark.parametrize("raw", ["2.9", "0", "-6", "soon", "nan"])
def test_too_short_or_unreadable_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="RECSTREAM_SESSION_TIMEOUT_S"):
        Settings.from_env({"RECSTREAM_SESSION_TIMEOUT_S": raw})


@pytest.mark.parametrize(
    ("name", "field", "default"),
    [
        ("RECSTREAM_REBALANCE_TIMEOUT_S", "rebalance_timeout_s", 6.0),
        ("RECSTREAM_BROKER_DOWN_EXIT_S", "broker_down_exit_s", 30.0),
    ],
)
def test_the_other_durations_are_read_and_checked_alike(
    name: str, field: str, default: float
) -> None:
    assert getattr(Settings.from_env({}), field) == default
    assert getattr(Settings.from_env({name: "2.5"}), field) == 2.5
    for raw in ("0.5", "0", "-1", "soon", "nan"):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: raw})


def test_every_group_on_the_bundled_broker_uses_it(tmp_path: Path) -> None:
    s = Settings.from_env({"RECSTREAM_SESSION_TIMEOUT_S": "8", "RECSTREAM_DATA_DIR": str(tmp_path)})
    kwargs = group_kwargs(s, "tansu")
    assert kwargs["session_timeout_ms"] == 8000
    assert kwargs["heartbeat_interval_ms"] < kwargs["session_timeout_ms"] / 2
    assert faust_config(s, "tansu")["broker_session_timeout"] == 8.0


def test_apache_kafka_keeps_its_own_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"RECSTREAM_SESSION_TIMEOUT_S": "8", "RECSTREAM_DATA_DIR": str(tmp_path)})
    assert group_kwargs(s, "kafka") == {}
    assert "broker_session_timeout" not in faust_config(s, "kafka")
