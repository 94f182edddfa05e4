"""Catalog messages tokenised ahead, a slice per user batch: the update starts once its batch
is tokenised, prepare takes the rows instead of tokenising again, and a message replaced
meanwhile is tokenised again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.adapters import pfeed_runtime, token_ahead
from stream.adapters.encoder import OnnxItemEncoder
from stream.adapters.token_ahead import TokensAhead
from tests.unit.test_pfeed_runtime import item, rows
from tests.unit.test_pfeed_updates import arrive, encoder, started

__all__ = ["encoder"]  # (the fixture: the bundled encoder, its gate open)


def test_a_slice_at_a_time_in_pending_order_and_a_replaced_message_again() -> None:
    made: list[str] = []

    def encode(message: Any) -> np.ndarray:
        made.append(message["item_id"])
        return np.array([len(made)])

    ahead = TokensAhead(encode)
    pending = {f"p{i}": {"item_id": f"p{i}"} for i in range(5)}
    pending["p2"] = {"item_id": "p2", "deleted": True}
    assert not ahead.advance(pending, upto=4, limit=2) and made == ["p0", "p1"]
    assert ahead.advance(pending, upto=4, limit=2) and made == ["p0", "p1", "p3"]  # (p2: none)
    assert ahead.advance(pending, upto=4, limit=2) and len(made) == 3  # nothing left to make
    pending["p1"] = {"item_id": "p1", "title": "new"}  # replaced: made again
    assert ahead.advance(pending, upto=4, limit=2) and made[-1] == "p1"
    batch = [pending[f"p{i}"] for i in range(4)]
    rows_ = ahead.take(batch)
    assert sorted(rows_) == ["p0", "p1", "p3"] and rows_["p1"].tolist() == [4]
    assert len(ahead) == 0
    # a message the rows were not made from gets none (prepare tokenises it)
    ahead.advance({"p7": {"item_id": "p7"}}, upto=1)
    assert ahead.take([{"item_id": "p7"}]) == {}


def test_an_update_starts_once_its_batch_is_tokenised_and_prepare_does_not_tokenise_again(
    tmp_path: Path, encoder: OnnxItemEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = started(tmp_path, encoder)  # type: ignore[arg-type]
    monkeypatch.setattr(pfeed_runtime, "UPDATE_GAP_S", 0.0)
    monkeypatch.setattr(pfeed_runtime, "UPDATE_DUTY", 1e9)
    monkeypatch.setattr(token_ahead, "TOKEN_SLICE", 3)
    calls: list[str] = []
    tokenizer = encoder.tokenizer
    original = type(tokenizer).encode

    def counted(self: Any, message: Any) -> np.ndarray:
        calls.append(str(message["item_id"]))
        return original(self, message)

    monkeypatch.setattr(type(tokenizer), "encode", counted)  # (a frozen dataclass)
    rt.ahead.encode = tokenizer.encode

    async def scenario() -> None:
        for i in range(30, 38):
            arrive(rt, item(i))
        changed = {**item(31), "title": "Another thing"}  # replaced after its slice
        rt.sync()
        assert rt._job is None and len(calls) == 3  # a slice, no update yet
        arrive(rt, changed)
        rt.sync()  # (p31 went to the end of the queue, as its message arrived last)
        assert rt._job is None and len(calls) == 6
        rt.sync()  # the last slice, p31 again (replaced), then the update starts
        assert rt._job is not None and len(calls) == 9 and calls.count("p31") == 2
        await rt.settle()
        assert calls.count("p31") == 2 and len(calls) == 9  # prepare made no row again
        assert all(len(rows(rt, f"p{i}")) == 20 for i in range(30, 38))
        assert rt.live is not None
        assert rt.live._content["p31"] == original(tokenizer, changed).tobytes()

    asyncio.run(scenario())


def test_a_tick_tokenises_every_slice_and_applies_the_batch(
    tmp_path: Path, encoder: OnnxItemEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = started(tmp_path, encoder)  # type: ignore[arg-type]
    monkeypatch.setattr(token_ahead, "TOKEN_SLICE", 2)

    async def scenario() -> None:
        for i in range(30, 37):
            arrive(rt, item(i))
        await rt.tick()
        assert not rt.updating and len(rt.ahead) == 0
        assert all(len(rows(rt, f"p{i}")) == 20 for i in range(30, 37))

    asyncio.run(scenario())
