"""A replay running beside a loop that reads lists: its interruption ends the command at once.

The replay swallows a Ctrl-C / SIGTERM that lands inside its own step and returns partial
counts with ``interrupted=True``. ``eval --live``'s collection and the demo's live view must
turn that back into the interrupt. ``eval --live`` used to keep waiting for lists for another
10 s, and a clean-clone CI run saw it miss its 10 s stop contract that way
(tests/e2e/test_clean_stops.py); the demo, reading forever, would have ignored the Ctrl-C.
``replay_to`` raises it again for every caller that did not ask for partial counts (a Ctrl-C
inside a bench pre-fill's replay would have let the bench go on with a partial catalog).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream import demo, tools
from stream.evaluation import live
from stream.replay import ReplayStats
from stream.settings import Settings

EVENTS = [
    {"topic": "clicks", "event_id": "e1", "user_id": "u1", "item_id": "i1", "ts": 1},
    {"topic": "clicks", "event_id": "e2", "user_id": "u2", "item_id": "i2", "ts": 2},
]


class _Reader:
    """Stands in for ``TopicReader``: hands out the queued messages, then nothing."""

    def __init__(self, _settings: Settings, _topic: str, queued: list[dict[str, Any]]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.queued = queued

    async def __aenter__(self) -> _Reader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def poll(self, timeout_ms: int = 50) -> list[dict[str, Any]]:
        await asyncio.sleep(0.001)
        new, self.queued[:] = list(self.queued), []
        return new


def _list_for(event_id: str) -> dict[str, Any]:
    return {"feed": "for_you", "trigger": {"event_id": event_id}, "items": [{"item_id": "x"}]}


def _patch(monkeypatch: pytest.MonkeyPatch, stats: ReplayStats, queued: list[Any]) -> None:
    async def replay_to(*_args: Any, **_kwargs: Any) -> ReplayStats:
        await asyncio.sleep(0.01)
        return stats

    monkeypatch.setattr(tools, "replay_to", replay_to)
    monkeypatch.setattr(tools, "TopicReader", lambda s, t: _Reader(s, t, queued))


def test_an_interrupted_replay_interrupts_the_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch(monkeypatch, ReplayStats(interrupted=True), [])
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(live._collect(Settings(), [], EVENTS, rate=20.0))


def test_a_finished_replay_returns_every_list_it_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _patch(monkeypatch, ReplayStats(sent={"clicks": 2}), [_list_for("e1"), _list_for("e2")])
    lists = asyncio.run(live._collect(Settings(), [], EVENTS, rate=20.0))
    assert lists == {"e1": ["x"], "e2": ["x"]}


def test_an_interrupted_replay_interrupts_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch(monkeypatch, ReplayStats(interrupted=True), [])
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(demo._live(Settings(), EVENTS, {}, {}, speed=1.0, seconds=5.0))


def test_the_demo_keeps_serving_after_a_finished_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch(monkeypatch, ReplayStats(sent={"clicks": 2}), [])
    view = asyncio.run(demo._live(Settings(), EVENTS, {}, {}, speed=1.0, seconds=0.3))
    assert isinstance(view, demo.LiveView)


def _fake_replay(monkeypatch: pytest.MonkeyPatch, stats: ReplayStats) -> None:
    import stream.replay

    async def replay(*_args: Any, **_kwargs: Any) -> ReplayStats:
        return stats

    monkeypatch.setattr(stream.replay, "replay", replay)


def test_replay_to_raises_an_interruption_unless_partial_counts_are_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bench's pre-fills must stop on Ctrl-C, not go on with half a catalog."""
    interrupted = ReplayStats(sent={"catalog": 3}, interrupted=True)
    _fake_replay(monkeypatch, interrupted)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(tools.replay_to(Settings(), EVENTS))
    assert asyncio.run(tools.replay_to(Settings(), EVENTS, partial=True)) is interrupted
    done = ReplayStats(sent={"clicks": 2})
    _fake_replay(monkeypatch, done)
    assert asyncio.run(tools.replay_to(Settings(), EVENTS)) is done
