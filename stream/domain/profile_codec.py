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

#: format bytes of a stored profile. ``HEADED`` (written now): the byte, the body JSON's length
#: and the last list's length (``_HEAD``: u32, u16, little-endian), the last for_you list's item
#: ids joined by ``_SEP``, then a zstd frame (level 1) of the orjson body without that list.
#: ``ZSTD`` (written until then): the same without the list up front (it is in the body).
#: ``COMPRESSED``: the byte, then zlib (level 1) of the body. Plain JSON (the first format,
#: starting with "{"). All are read, so existing data dirs and changelogs recover unchanged.
#:
#: Why the list up front: after a restart or rebalance the stock index reads the last list of
#: every local user (``stored_last_items``); a full decode is ~50 µs a profile, i.e. 5 s of the
#: event loop for 100k users. Read from the header it is a slice and a split. It costs ~60 B a
#: profile (+4.5 % on the quick bench's users): ids repeated elsewhere compressed better.
HEADED = b"\x03"
ZSTD = b"\x02"
COMPRESSED = b"\x01"
_LENGTH = struct.Struct("<I")
_HEAD = struct.Struct("<IH")
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
    """``to_dict()`` fields → the stored form (``HEADED``, or ``ZSTD`` for a list the header
    cannot frame)."""
    last: list[str] = body.get("li") or []
    joined = _SEP.join(last)
    head = joined.encode()
    if joined.count(_SEP) != max(0, len(last) - 1) or not all(last) or len(head) > 0xFFFF:
        raw = orjson.dumps(body)  # an id the header cannot frame: the list stays in the body
        return ZSTD + _LENGTH.pack(len(raw)) + _compressor().compress(raw)
    raw = orjson.dumps({k: v for k, v in body.items() if k != "li"})
    return HEADED + _HEAD.pack(len(raw), len(head)) + head + _compressor().compress(raw)


def decode_stored(raw: bytes) -> dict[str, Any]:
    """A stored profile's fields, whichever format wrote it; ValueError on anything else."""
    head = raw[:1]
    if head == HEADED:
        (size, n), start = _HEAD.unpack_from(raw, 1), 1 + _HEAD.size
        body = _unzstd(raw[start + n :], size)
        body["li"] = _split(raw[start : start + n])
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
    """The last for_you list of a stored profile: from the header when the format has one (no
    decompression), else from the decoded body. ValueError on anything that is no profile."""
    if raw[:1] == HEADED:
        if len(raw) < 1 + _HEAD.size:
            raise ValueError("stored profile: truncated header")
        n, start = _HEAD.unpack_from(raw, 1)[1], 1 + _HEAD.size
        if len(raw) < start + n:
            raise ValueError("stored profile: truncated last list")
        return _split(raw[start : start + n])
    return list(decode_stored(raw).get("li", []))


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
