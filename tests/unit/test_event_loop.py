"""The worker's event loop: uvloop by default, Python's own on request, anything else refused."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import uvloop

from stream.adapters.event_loop import use_event_loop
from stream.settings import Settings


@pytest.fixture(autouse=True)
def _default_policy_after() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)


def _loop_made_in_a_thread() -> asyncio.AbstractEventLoop:
    """What mode does for Faust's consumer: a new loop, in a thread of its own."""
    made: list[asyncio.AbstractEventLoop] = []
    thread = threading.Thread(target=lambda: made.append(asyncio.new_event_loop()))
    thread.start()
    thread.join()
    return made[0]


def test_uvloop_makes_every_later_loop_a_uvloop_one_in_any_thread() -> None:
    assert use_event_loop("uvloop") == "uvloop"
    for loop in (asyncio.new_event_loop(), _loop_made_in_a_thread()):
        try:
            assert isinstance(loop, uvloop.Loop)
            assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
        finally:
            loop.close()


def test_asyncio_restores_pythons_own_loop() -> None:
    use_event_loop("uvloop")
    assert use_event_loop("asyncio") == "asyncio"
    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_an_unknown_loop_is_refused_and_changes_nothing() -> None:
    before = asyncio.get_event_loop_policy()
    with pytest.raises(ValueError, match="uvloop, asyncio"):
        use_event_loop("trio")
    assert asyncio.get_event_loop_policy() is before


def test_settings_default_to_uvloop_and_read_the_variable() -> None:
    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings.from_env({"RECSTREAM_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="RECSTREAM_EVENT_LOOP"):
        Settings.from_env({"RECSTREAM_EVENT_LOOP": "tokio"})
