"""The stored form of a user profile: a format byte, then compressed JSON.

Kept apart from the update rules in ``stream.domain.profile`` because it changes for other
reasons (bytes on disk and on the changelog, recovery time) and must keep reading every format
ever written: a data dir or changelog from an older release recovers unchanged.
"""

from __future__ import annotations

import struct
import threading
import zlib
from typing import Any

import orjson
import zstandard

#: format bytes of a stored profile. ``LISTED`` (written now for a profile whose list lost items
#: to stock-outs): the byte, the body JSON's length, the last list's and the lost items' lengths
#: (``_HEAD2``: u32, u16, u16), both lists of ids joined by ``_SEP``, then the zstd frame of the
#: body without them. ``HEADED`` (written now for every other profile): the byte, the body
#: JSON's length and the last list's length (``_HEAD``: u32, u16, little-endian), the last
#: for_you list's item ids joined by ``_SEP``, then a zstd frame (level 1) of the orjson body
#: without that list.
#: ``ZSTD`` (written until then): the same without the list up front (it is in the body).
#: ``COMPRESSED``: the byte, then zlib (level 1) of the body. Plain JSON (the first format,
#: starting with "{"). All are read, so existing data dirs and changelogs recover unchanged.
#:
#: Why the list up front: after a restart or rebalance the stock index reads the last list of
#: every local user (``stored_last_items``); a full decode is ~50 µs a profile, i.e. 5 s of the
#: event loop for 100k users. Read from the header it is a slice and a split. It costs ~60 B a
#: profile (+4.5 % on the quick bench's users): ids repeated elsewhere compressed better. The
#: lost items (``UserProfile.lost``) are up front for the same reason: the rebuilt index of who
#: lost what is what a restock refreshes. Written only when there are some, so every other
#: profile keeps the bytes it had (a worker of an older release reads neither 0x04 nor 0x03
#: before its own: upgrade every worker before a stock-out, as for 0x03).
LISTED = b"\x04"
HEADED = b"\x03"
ZSTD = b"\x02"
COMPRESSED = b"\x01"
_LENGTH = struct.Struct("<I")
_HEAD = struct.Struct("<IH")
_HEAD2 = struct.Struct("<IHH")
_SEP = "\x1f"  # (ids may hold any character: a list it cannot frame stays in the body)
#: far above any bounded profile (a heavy one is ~40 KB of JSON)
MAX_STORED_JSON = 16 * 2**20
#: zstd (level 1) through python-zstandard, with one compression and one decompression context
#: per thread, reused: the frames are byte for byte what pyarrow's codec wrote before (checked
#: in ``tests/unit/test_profile_store.py``), so nothing stored changes. pyarrow's codec made a
#: context per call: on the bench's profiles (3.9 KB of JSON on average) 20.1 µs to compress and
#: 12.4 µs to decompress, against 12.2 and 5.1 µs here. (zstd itself replaced zlib earlier:
#: faster to compress and a little smaller, most for the largest profiles; bytes mean 1,096 vs
#: 1,146, p95 2,157 vs 2,435, heavy 9,192 vs 10,381 on the quick bench's users.)
_CONTEXTS = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # a context is not safe to share between threads (tools and snapshots run in threads)
    ctx: zstandard.ZstdCompressor | None = getattr(_CONTEXTS, "compress", None)
    if ctx is None:
        ctx = _CONTEXTS.compress = zstandard.ZstdCompressor(level=1)
    return ctx


def _decompressor() -> zstandard.ZstdDecompressor:
    ctx: zstandard.ZstdDecompressor | None = getattr(_CONTEXTS, "decompress", None)
    if ctx is None:
        ctx = _CONTEXTS.decompress = zstandard.ZstdDecompressor()
    return ctx


def encode_stored(body: dict[str, Any]) -> bytes:
    """``to_dict()`` fields → the stored form (``LISTED`` or ``HEADED``, or ``ZSTD`` for lists
    the header cannot frame)."""
    last, lost = _frame(body.get("li") or []), _frame(body.get("lo") or [])
    if last is None or lost is None:  # an id the header cannot frame: the lists stay in the body
        raw = orjson.dumps(body)
        return ZSTD + _LENGTH.pack(len(raw)) + _compressor().compress(raw)
    raw = orjson.dumps({k: v for k, v in body.items() if k != "li" and k != "lo"})
    if not lost:
        return HEADED + _HEAD.pack(len(raw), len(last)) + last + _compressor().compress(raw)
    head = _HEAD2.pack(len(raw), len(last), len(lost))
    return LISTED + head + last + lost + _compressor().compress(raw)


def _frame(ids: list[str]) -> bytes | None:
    """Ids joined for a header, or None when they cannot be (a separator or an empty id in
    one, or too long for its u16 length)."""
    joined = _SEP.join(ids)
    head = joined.encode()
    if joined.count(_SEP) != max(0, len(ids) - 1) or not all(ids) or len(head) > 0xFFFF:
        return None
    return head


def decode_stored(raw: bytes) -> dict[str, Any]:
    """A stored profile's fields, whichever format wrote it; ValueError on anything else."""
    head = raw[:1]
    if head in (HEADED, LISTED):
        last, lost, start = _lists(raw)
        (size,) = _LENGTH.unpack_from(raw, 1)
        body = _unzstd(raw[start:], size)
        body["li"] = last
        if lost:
            body["lo"] = lost
        return body
    if head == ZSTD:
        (size,) = _LENGTH.unpack_from(raw, 1)
        return _unzstd(raw[5:], size)
    if head == COMPRESSED:
        older: dict[str, Any] = orjson.loads(zlib.decompress(raw[1:]))
        return older
    if head == b"{":
        legacy: dict[str, Any] = orjson.loads(raw)
        return legacy
    raise ValueError(f"not a stored profile (format byte {head!r})")


def stored_last_items(raw: bytes) -> list[str]:
    """The last for_you list of a stored profile (see ``stored_lists``)."""
    return stored_lists(raw)[0]


def stored_lists(raw: bytes) -> tuple[list[str], list[str]]:
    """The last for_you list of a stored profile and the items it lost to stock-outs: from the
    header when the format has one (no decompression), else from the decoded body. ValueError
    on anything that is no profile."""
    if raw[:1] in (HEADED, LISTED):
        last, lost, _ = _lists(raw)
        return last, lost
    body = decode_stored(raw)
    return list(body.get("li", [])), list(body.get("lo", []))


def _lists(raw: bytes) -> tuple[list[str], list[str], int]:
    """A headed profile's two lists, and where its zstd frame starts."""
    shape = _HEAD2 if raw[:1] == LISTED else _HEAD
    if len(raw) < 1 + shape.size:
        raise ValueError("stored profile: truncated header")
    _, n, *rest = shape.unpack_from(raw, 1)
    m = rest[0] if rest else 0
    start = 1 + shape.size
    if len(raw) < start + n + m:
        raise ValueError("stored profile: truncated last list")
    return _split(raw[start : start + n]), _split(raw[start + n : start + n + m]), start + n + m


def _split(head: bytes) -> list[str]:
    return head.decode().split(_SEP) if head else []


def _unzstd(frame: bytes, size: int) -> dict[str, Any]:
    if size > MAX_STORED_JSON:  # a corrupt header must not allocate gigabytes
        raise ValueError(f"stored profile claims {size} bytes of JSON")
    try:
        # a frame states its size too, and decompress would allocate what it states
        if zstandard.frame_content_size(frame) not in (size, -1):
            raise ValueError("stored profile: its frame and its header differ on its size")
        json = _decompressor().decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise ValueError(f"stored profile: {exc}") from exc
    if len(json) != size:
        raise ValueError(f"stored profile: {len(json)} bytes of JSON, its header says {size}")
    body: dict[str, Any] = orjson.loads(json)
    return body
