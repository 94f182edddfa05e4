"""The output producer's configuration (its delivery is covered by the integration tests)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from stream.adapters import outputs
from stream.settings import Settings


class _FakeProducer:
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        _FakeProducer.made.append(kwargs)

    async def start(self) -> None:
        return None


def _started(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> dict[str, Any]:
    _FakeProducer.made.clear()
    monkeypatch.setattr(outputs, "AIOKafkaProducer", _FakeProducer)
    asyncio.run(outputs.OutputProducer(Settings(), **kwargs).start())
    return _FakeProducer.made[-1]


def test_a_batch_of_lists_fits_one_record_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiokafka's 16 KB default split a batch's outputs into produce requests one after another
    made = _started(monkeypatch)
    assert made["max_batch_size"] == outputs.OUTPUT_MAX_BATCH_BYTES >= 256 * 1024
    assert made["linger_ms"] == outputs.OUTPUT_LINGER_MS
    assert made["acks"] == "all"


def test_batch_bytes_and_linger_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _started(monkeypatch, linger_ms=3, max_batch_bytes=64 * 1024)
    assert (made["linger_ms"], made["max_batch_size"]) == (3, 64 * 1024)
