"""Dataset adapters and the generic format: real data slices, fast (no broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.datasets import (
    Events,
    load_dataset,
    read_catalog,
    read_events,
    without_topic,
    write_dataset,
)
from stream.replay import KEY_FIELD, _encode, _Pacer

USER_TOPICS = {"clicks", "dwell", "carts", "orders", "returns", "searches"}


def _sample() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    catalog = [
        {"item_id": "a", "ts": 1, "title": "A", "attributes": {"category": ["x", "y"]}},
        {"topic": "catalog", "item_id": "b", "ts": 1},
    ]
    events = [
        {"topic": "clicks", "event_id": "e1", "user_id": "u1", "item_id": "a", "ts": 10},
        {
            "topic": "orders",
            "event_id": "e2",
            "user_id": "u1",
            "ts": 10,
            "items": [{"item_id": "a", "quantity": 2, "price": 1.5}],
        },
        {"topic": "stock", "event_id": "e3", "item_id": "b", "ts": 12, "available": 0},
    ]
    return catalog, events


# -- generic format ----------------------------------------------------------------------------
def test_generic_roundtrip(tmp_path: Path) -> None:
    catalog, events = _sample()
    meta = write_dataset(tmp_path, catalog, events, meta={"source": "test"})
    assert meta["events"] == 3 and meta["catalog"] == 2 and meta["topics"]["clicks"] == 1
    assert list(read_events(tmp_path)) == events
    assert list(read_catalog(tmp_path)) == [{"topic": "catalog", **c} for c in catalog]
    ds = load_dataset(str(tmp_path))
    assert len(ds.catalog) == 2
    assert list(ds.events) == list(ds.events) == events  # re-iterable
    assert isinstance(ds.events, Events) and ds.events.count == 3
    first = (tmp_path / "events.jsonl").read_bytes().splitlines()[0]
    assert orjson.loads(first) == events[0]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"topic": "nope", "ts": 1}', "unknown or missing topic"),
        (b'{"topic": "clicks", "user_id": "u"}', "ts"),
        (b'{"topic": "clicks", "ts": 1}', "out of time order"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: bytes, needle: str) -> None:
    catalog, events = _sample()
    write_dataset(tmp_path, catalog, events)
    path = tmp_path / "events.jsonl"
    path.write_bytes(path.read_bytes() + b"\n" + line + b"\n")
    with pytest.raises(ValueError, match=needle) as err:
        list(read_events(tmp_path))
    assert f"{path}:5" in str(err.value)  # line 4 is blank: numbering follows the file


def test_bad_catalog_line_and_writer_checks(tmp_path: Path) -> None:
    catalog, events = _sample()
    write_dataset(tmp_path, catalog, events)
    (tmp_path / "catalog.jsonl").write_bytes(b'{"topic": "catalog", "ts": 1}\n')
    with pytest.raises(ValueError, match=r"catalog\.jsonl:1: catalog record without item_id"):
        list(read_catalog(tmp_path))
    with pytest.raises(ValueError, match="out of time order"):
        write_dataset(tmp_path / "x", catalog, list(reversed(events)))
    with pytest.raises(ValueError, match="unknown or missing topic"):
        write_dataset(tmp_path / "y", catalog, [{"ts": 1}])
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset(str(tmp_path / "missing"))
    (tmp_path / "catalog.jsonl").write_bytes(b"")
    with pytest.raises(ValueError, match=r"catalog\.jsonl has no item"):
        load_dataset(str(tmp_path))


# -- shared checks on real slices ----------------------------------------------------------------
def _check_common(catalog: list[dict[str, Any]], events: list[dict[str, Any]], prefix: str) -> None:
    ids = {c["item_id"] for c in catalog}
    assert len(ids) == len(catalog), "one catalog message per item"
    assert all(c["topic"] == "catalog" and isinstance(c["ts"], int) for c in catalog)
    assert all(isinstance(c["flags"]["deal"], bool) and c["flags"]["new"] is False for c in catalog)
    assert events, "a slice must not be empty"
    first_ts = min(c["ts"] for c in catalog)
    assert first_ts <= events[0]["ts"], "catalog comes before the first event"
    tss = [e["ts"] for e in events]
    assert tss == sorted(tss) and all(isinstance(t, int) for t in tss)
    event_ids = [e["event_id"] for e in events if e["topic"] in USER_TOPICS]
    assert len(event_ids) == len(set(event_ids)), "event ids are unique"
    for e in events:
        if e["topic"] in USER_TOPICS:
            assert e["user_id"].startswith(prefix)
            for line in e.get("items", [e] if "item_id" in e else []):
                assert line["item_id"] in ids, f"{line['item_id']} not in the catalog"
        else:
            assert e["item_id"] in ids


def _validate_all(messages: list[dict[str, Any]]) -> None:
    """Validate against the JSON Schemas when the validation adapter exists (else skip)."""
    validation = pytest.importorskip("stream.adapters.validation")
    validators = validation.get_validators()
    for msg in messages:
        validators.validate(msg["topic"], without_topic(msg))
        validators.validate("dataset-line", msg)


# -- The Complete Journey ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cj() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ds = load_dataset("completejourney", max_households=5, seed=0, cache=False)
    return ds.catalog, list(ds.events)


def test_completejourney_slice(cj: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    catalog, events = cj
    _check_common(catalog, events, "hh-")
    orders = [e for e in events if e["topic"] == "orders"]
    assert len({e["user_id"] for e in orders}) == 5
    assert all(e["event_id"].startswith("cj-") for e in orders)
    with_attrs = [c for c in catalog if c.get("attributes")]
    assert len(with_attrs) >= 0.95 * len(catalog)
    for c in with_attrs:
        assert 1 <= len(c["attributes"]["category"]) <= 3
        assert c["attributes"]["brand"] in {"National", "Private"}
    assert any("size" in c["attributes"] for c in with_attrs)
    ordered = {line["item_id"] for e in orders for line in e["items"]}
    assert ordered == {c["item_id"] for c in catalog}, "catalog = products of the slice, no more"
    lines = [line for e in orders for line in e["items"]]
    assert all(line["quantity"] >= 1 and line["price"] >= 0 for line in lines)
    # Deal flags: some items are deals, and flips come as full catalog messages.
    assert any(c["flags"]["deal"] for c in catalog)
    updates = [e for e in events if e["topic"] == "catalog"]
    assert updates
    by_id = {c["item_id"]: c for c in catalog}
    state = {c["item_id"]: c["flags"]["deal"] for c in catalog}
    for u in updates:
        assert {k: v for k, v in u.items() if k not in ("ts", "flags")} == {
            k: v for k, v in by_id[u["item_id"]].items() if k not in ("ts", "flags")
        }, "an update is the full catalog message"
        assert state[u["item_id"]] != u["flags"]["deal"], "an update is emitted only on a change"
        state[u["item_id"]] = u["flags"]["deal"]


def test_completejourney_deterministic_and_cached(tmp_path: Path) -> None:
    a = load_dataset("cj", max_households=2, max_baskets=20, seed=3, cache=tmp_path)
    b = load_dataset("cj", max_households=2, max_baskets=20, seed=3, cache=tmp_path)
    c = load_dataset("cj", max_households=2, max_baskets=20, seed=3, cache=False)
    events = list(a.events)
    assert events == list(b.events) == list(c.events)
    assert a.catalog == b.catalog == c.catalog
    assert sum(e["topic"] == "orders" for e in events) == 20
    assert len(list(tmp_path.iterdir())) == 1  # one cache entry, no temporary leftovers


def test_completejourney_schemas(cj: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    catalog, events = cj
    _validate_all(catalog + events)


# -- MovieLens-100K ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ds = load_dataset("movielens", max_users=10, seed=0)
    return ds.catalog, list(ds.events)


def test_movielens_slice(ml: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    catalog, events = ml
    _check_common(catalog, events, "u-")
    assert len(catalog) == 1682
    toy = next(c for c in catalog if c["item_id"] == "ml-1")
    assert toy["title"] == "Toy Story"
    assert toy["attributes"] == {"category": ["Animation", "Children's", "Comedy"], "year": 1995}
    assert sum(bool(c["attributes"].get("category")) for c in catalog) >= 1670
    assert len({e["user_id"] for e in events}) == 10
    assert {e["topic"] for e in events} == {"orders", "clicks", "returns"}
    for e in events:
        assert e["event_id"].startswith("ml-") and e["ts"] % 1000 == 0
        if e["topic"] == "orders":
            assert len(e["items"]) == 1 and e["items"][0]["quantity"] == 1
        if e["topic"] == "returns":
            assert e["reason"] in {"rated 1/5", "rated 2/5"}
    keys = [(e["ts"], int(e["user_id"][2:]), int(e["event_id"].rsplit("-", 1)[1])) for e in events]
    assert keys == sorted(keys)


def test_movielens_rating_mapping() -> None:
    """The documented mapping, checked against the raw file for a handful of ratings."""
    from stream.datasets.movielens import _topic_for, ml100k_dir

    assert [_topic_for(r) for r in (1, 2, 3, 4, 5)] == [
        "returns",
        "returns",
        "clicks",
        "orders",
        "orders",
    ]
    lines = (ml100k_dir() / "ml-100k.inter").read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["user_id:token", "item_id:token", "rating:float"]
    raw = {}
    for line in lines[1:200]:
        user, item, rating, _ts = line.split("\t")
        raw[f"ml-{user}-{item}"] = _topic_for(float(rating))
    users = {k.split("-")[1] for k in raw}
    events = [e for e in load_dataset("movielens").events if e["event_id"] in raw]
    assert {e["event_id"]: e["topic"] for e in events} == raw
    assert {e["user_id"][2:] for e in events} == users


def test_movielens_schemas(ml: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    catalog, events = ml
    _validate_all(catalog + events)


# -- replay helpers (the broker test lives with the integration tests) ---------------------------
def test_replay_encoding_and_pacing() -> None:
    _, events = _sample()
    topic, key, value = _encode(events[1], 0)
    assert (topic, key) == ("orders", b"u1") and b"topic" not in value
    assert orjson.loads(value) == without_topic(events[1])
    assert _encode(events[2], 0)[1] == b"b"  # stock is keyed by item
    assert set(KEY_FIELD) == {
        "clicks",
        "dwell",
        "carts",
        "orders",
        "returns",
        "searches",
        "stock",
        "catalog",
    }
    with pytest.raises(ValueError, match="record 7: unknown topic"):
        _encode({"topic": "bogus"}, 7)
    with pytest.raises(ValueError, match="without user_id"):
        _encode({"topic": "clicks", "ts": 1}, 0)
    pacer = _Pacer(speed=1000.0, rate=None)
    assert pacer.delay(0, 0) <= 0
    assert 0.9 < pacer.delay(1, 1_000_000) <= 1.0  # 1000 s of event time at 1000x
    capped = _Pacer(speed=None, rate=100.0)
    assert 0.09 < capped.delay(10, None) <= 0.1
    with pytest.raises(ValueError):
        _Pacer(speed=0, rate=None)


def test_replay_unreachable_broker_fails_fast() -> None:
    from stream.replay import replay

    async def go() -> None:
        await replay(
            [],
            bootstrap="127.0.0.1:1",
            progress=False,
            producer_kwargs={"request_timeout_ms": 1000},
        )

    with pytest.raises(Exception):  # noqa: B017 - aiokafka raises KafkaConnectionError
        asyncio.run(asyncio.wait_for(go(), 10))
