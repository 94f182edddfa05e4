"""The worker prepares its engine while Faust joins the group: ``pipeline.ready`` is set only
once everything ranking reads is in place, and a failure on the way takes the worker down
(``die``), never a worker that has joined and silently serves nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stream import lifecycle
from stream.adapters.metrics import Metrics
from stream.settings import Settings


class Died(Exception):
    """Stands in for ``os._exit``: ends the coroutine where the worker would have exited."""


class _Step:
    """A part with an async ``start`` that records when it ran, optionally failing."""

    def __init__(self, name: str, order: list[str], fail: bool = False) -> None:
        self.name, self.order, self.fail = name, order, fail
        self.failed = None

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        self.order.append(self.name)


def _rapp(order: list[str], *, caught_up: bool = True, pfeed_fails: bool = False) -> Any:
    ready = asyncio.Event()

    async def replica_caught_up(timeout: float) -> bool:
        order.append("replica")
        return caught_up

    class Pfeed(_Step):
        async def start(self) -> None:
            assert not ready.is_set(), "served before the lookup was loaded"
            await super().start()

    gc = SimpleNamespace(
        install=lambda: order.append("gc"), set_gen0=lambda n: None, freeze=lambda: None
    )

    async def check_held() -> None:  # the stock check of an index rebuilt before ready
        assert ready.is_set(), "checked the held items while the stock history was replayed"
        order.append("check")

    return SimpleNamespace(
        settings=Settings.from_env({}),
        metrics=Metrics(),
        profiles=_Step("profiles", order),
        replica=SimpleNamespace(caught_up=replica_caught_up, failed=None),
        engine=SimpleNamespace(catalog=[], learner=SimpleNamespace(applied=0)),
        pfeed=Pfeed("pfeed", order, fail=pfeed_fails),
        gc=gc,
        pipeline=SimpleNamespace(ready=ready, check_held=check_held),
        items=None,
    )


@pytest.fixture
def deaths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reasons: list[str] = []

    def die(reason: str, exc: BaseException | None = None) -> None:
        reasons.append(reason)
        raise Died(reason)

    monkeypatch.setattr(lifecycle, "die", die)
    return reasons


def test_ready_is_set_last_after_profiles_catalog_lookup_and_kernels(deaths: list[str]) -> None:
    order: list[str] = []
    rapp = _rapp(order)
    asyncio.run(lifecycle.Lifecycle(rapp)._prepare())
    assert order == ["profiles", "replica", "pfeed", "gc", "check"]
    assert rapp.pipeline.ready.is_set()
    assert deaths == []


@pytest.mark.parametrize(
    ("broken", "reason"),
    [({"pfeed_fails": True}, "pfeed broke"), ({"caught_up": False}, "did not catch up")],
    ids=["a lookup that fails to load", "a catalog that never catches up"],
)
def test_a_failure_while_preparing_takes_the_worker_down(
    deaths: list[str], broken: dict[str, bool], reason: str
) -> None:
    rapp = _rapp([], **broken)
    with pytest.raises(Died):
        asyncio.run(lifecycle.Lifecycle(rapp)._prepare())
    assert deaths and reason in deaths[0]
    assert not rapp.pipeline.ready.is_set()


def test_a_stop_while_preparing_neither_dies_nor_serves(deaths: list[str]) -> None:
    """A SIGTERM during the preparation closes the parts it uses (``on_stop``): the step that
    fails on a closed part must not turn a clean stop into exit 70."""
    rapp = _rapp([])
    life = lifecycle.Lifecycle(rapp)

    async def closed_under_it() -> None:
        life._stopped.set()  # the stop arrives while the lookup loads
        raise RuntimeError("the lookup's store was closed")

    rapp.pfeed.start = closed_under_it
    asyncio.run(life._prepare())
    assert deaths == []
    assert not rapp.pipeline.ready.is_set()


def test_stopping_cancels_a_preparation_still_running(deaths: list[str]) -> None:
    rapp = _rapp([])
    life = lifecycle.Lifecycle(rapp)

    async def forever() -> None:
        await asyncio.Event().wait()

    rapp.pfeed.start = forever

    async def run() -> asyncio.Future[None]:
        life._preparing = asyncio.ensure_future(life._prepare())
        await asyncio.sleep(0.01)  # it now waits on the lookup
        life._stopped.set()
        await life._stop_preparing()
        return life._preparing

    task = asyncio.run(run())
    assert task.cancelled()
    assert deaths == []
    assert not rapp.pipeline.ready.is_set()
