"""The stored form of a profile: zstd with the last list up front now, and every format written
before still reads.

``profile_zlib_heavy.bin`` was written by the previous code (format byte 0x01, zlib over the
``to_dict()`` JSON): the bench's heavy user (600 workload events replayed as one user, every
default bound near full, with a timeline, first-seen times and a click context), as a worker's
RocksDB store and changelog hold it today.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import orjson
import pytest

from stream.domain.events import UserEvent
from stream.domain.profile import (
    COMPRESSED,
    HEADED,
    LISTED,
    ZSTD,
    UserProfile,
    apply_event,
    decode_stored,
    encode_stored,
    stored_last_items,
    stored_lists,
)

HEAVY_ZLIB = Path(__file__).parent / "fixtures" / "profile_zlib_heavy.bin"
T0 = 1_700_000_000_000


def zlib_bytes(profile: UserProfile) -> bytes:
    """What ``to_bytes`` wrote before this format (kept here to produce old data)."""
    return COMPRESSED + zlib.compress(orjson.dumps(profile.to_dict()), 1)


def zstd_bytes(profile: UserProfile) -> bytes:
    """What ``to_bytes`` wrote before the list moved up front (format 0x02)."""
    import pyarrow as pa

    raw = orjson.dumps(profile.to_dict())
    frame = pa.Codec("zstd", compression_level=1).compress(raw, asbytes=True)
    return ZSTD + len(raw).to_bytes(4, "little") + frame


def small_profile() -> UserProfile:
    profile = UserProfile(user_id="u1")
    events = [
        UserEvent("clicks", f"e{n}", "u1", T0 + n, (f"i{n % 7}",), source=("clicks", 0, n))
        for n in range(40)
    ]
    events.append(UserEvent("searches", "s", "u1", T0 + 50, (), filters={"size": "M"}))
    events.append(UserEvent("orders", "o", "u1", T0 + 60, ("i1", "i2"), quantities=(2, 1)))
    events.append(UserEvent("returns", "r", "u1", T0 + 70, ("i2",)))
    for event in events:
        apply_event(profile, event, lambda item: [f"brand:{item}", "category:x"])
    profile.last_items = ["i3", "i4"]
    profile.version = 9
    return profile


def test_new_profiles_are_written_with_the_list_up_front_and_read_back_exactly() -> None:
    profile = small_profile()
    raw = profile.to_bytes()
    assert raw[:1] == HEADED
    back = UserProfile.from_bytes(raw)
    assert back == profile
    assert back.to_bytes() == raw  # deterministic: a replayed burst writes the same bytes
    assert decode_stored(raw) == profile.to_dict()


def test_the_heavy_profile_written_by_the_old_code_loads_and_rewrites_smaller() -> None:
    old = HEAVY_ZLIB.read_bytes()
    assert old[:1] == COMPRESSED
    profile = UserProfile.from_bytes(old)
    assert profile.user_id == "bench-heavy"
    assert (len(profile.long_term), len(profile.queries), len(profile.firsts)) == (227, 100, 214)
    assert profile.timeline and profile.context
    assert zlib_bytes(profile) == old  # the fixture is exactly what the old writer produced
    new = profile.to_bytes()
    assert new[:1] == HEADED and len(new) < len(old)
    assert UserProfile.from_bytes(new) == profile
    assert decode_stored(new) == decode_stored(old)


def test_every_older_format_reads_to_the_same_profile() -> None:
    profile = small_profile()
    plain = orjson.dumps(profile.to_dict())  # the first format: plain JSON
    for raw in (plain, zlib_bytes(profile), zstd_bytes(profile), profile.to_bytes()):
        assert UserProfile.from_bytes(raw) == profile
        assert decode_stored(raw) == orjson.loads(plain)
        assert stored_last_items(raw) == ["i3", "i4"]


def test_anything_else_is_a_clear_error_not_an_empty_profile() -> None:
    with pytest.raises(ValueError, match="format byte"):
        UserProfile.from_bytes(b"\x07garbage")
    with pytest.raises(ValueError, match="format byte"):
        decode_stored(b"")


def test_the_stored_length_header_matches_the_body() -> None:
    body = small_profile().to_dict()
    raw = encode_stored(body)
    rest = {k: v for k, v in body.items() if k != "li"}
    assert int.from_bytes(raw[1:5], "little") == len(orjson.dumps(rest))
    assert raw[7:9] == b"i3" and int.from_bytes(raw[5:7], "little") == len(b"i3\x1fi4")


@pytest.mark.parametrize("last", [[], ["i1"], ["a\x1fb", "c"], ["", "x"], ["é", "名"]])
def test_the_last_list_reads_without_decoding_and_any_id_round_trips(last: list[str]) -> None:
    profile = small_profile()
    profile.last_items = last
    raw = profile.to_bytes()
    assert stored_last_items(raw) == last
    assert UserProfile.from_bytes(raw) == profile
    framable = all(last) and not any("\x1f" in i for i in last)
    assert raw[:1] == (HEADED if framable else ZSTD)  # else the list stays in the body


@pytest.mark.parametrize(
    ("last", "lost", "fmt"),
    [
        (["i3"], ["i9", "i8"], LISTED),
        ([], ["i9"], LISTED),
        (["i3"], [], HEADED),  # nothing lost: the bytes every profile had before
        (["i3"], ["a\x1fb"], ZSTD),  # an id the header cannot frame: both lists in the body
        (["", "i3"], ["i9"], ZSTD),
    ],
)
def test_the_lost_items_read_without_decoding_too(
    last: list[str], lost: list[str], fmt: bytes
) -> None:
    profile = small_profile()
    profile.last_items, profile.lost = last, lost
    raw = profile.to_bytes()
    assert raw[:1] == fmt
    assert stored_lists(raw) == (last, lost) and stored_last_items(raw) == last
    assert UserProfile.from_bytes(raw) == profile
    assert decode_stored(raw) == profile.to_dict()
    assert profile.to_bytes() == raw
    if fmt == LISTED:  # the body's JSON holds neither list
        size = int.from_bytes(raw[1:5], "little")
        rest = {k: v for k, v in profile.to_dict().items() if k not in ("li", "lo")}
        assert size == len(orjson.dumps(rest))


def test_a_truncated_header_is_a_value_error() -> None:
    raw = small_profile().to_bytes()
    for cut in (3, 8):
        with pytest.raises(ValueError, match="truncated"):
            stored_last_items(raw[:cut])
    profile = small_profile()
    profile.lost = ["i9"]
    raw = profile.to_bytes()
    for cut in (4, 9, 14):
        with pytest.raises(ValueError, match="truncated"):
            stored_lists(raw[:cut])


def test_profile_parts_say_what_each_bounded_part_costs() -> None:
    """The bench's breakdown of the heavy user: entries per part, and bytes that drop out of
    the stored form without that part (so they add up to less than the whole)."""
    from stream.bench.state_size import profile_parts

    raw = UserProfile.from_bytes(HEAVY_ZLIB.read_bytes()).to_bytes()
    parts = profile_parts(raw)
    long_term = parts["long_term (max_long_features)"]
    assert long_term["entries"] == 227
    assert parts["firsts (first_seen.MAX_ITEMS)"]["entries"] == 214
    assert parts["returned (max_returned)"]["entries"] == 0
    assert all(p["bytes"] > 0 for p in parts.values())
    assert sum(p["bytes"] for p in parts.values()) < len(raw)
    assert long_term["bytes"] == max(p["bytes"] for p in parts.values())


def test_a_corrupt_zstd_profile_is_a_value_error_not_an_allocation() -> None:
    raw = encode_stored(small_profile().to_dict())
    with pytest.raises(ValueError, match="claims"):
        decode_stored(raw[:1] + (2**31).to_bytes(4, "little") + raw[5:])
    with pytest.raises(ValueError):  # zstandard says ZstdError: re-raised as ValueError
        decode_stored(raw[:5] + b"\x00" * 12)


def test_a_frame_that_disagrees_with_its_header_is_a_value_error() -> None:
    raw = encode_stored(small_profile().to_dict())
    (size,) = struct.unpack_from("<I", raw, 1)
    lied = raw[:1] + struct.pack("<I", size - 1) + raw[5:]  # the frame says ``size``
    with pytest.raises(ValueError, match="differ on its size"):
        decode_stored(lied)


def test_the_frames_are_what_pyarrows_codec_wrote_before() -> None:
    """The codec changed (python-zstandard, one context per thread), the bytes did not: a
    replayed burst still writes what the previous release wrote, and both read each other."""
    import pyarrow as pa

    old = pa.Codec("zstd", compression_level=1)
    heavy = UserProfile.from_bytes(HEAVY_ZLIB.read_bytes())
    for profile in (small_profile(), heavy):
        raw = profile.to_bytes()
        (size, n) = struct.unpack_from("<IH", raw, 1)
        body = {k: v for k, v in profile.to_dict().items() if k != "li"}
        assert raw[1 + 6 + n :] == old.compress(orjson.dumps(body), asbytes=True)
        assert len(orjson.dumps(body)) == size
