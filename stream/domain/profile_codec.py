"""The stored form of a user profile: a format byte, then compressed JSON.

Kept apart from the update rules in ``stream.domain.profile`` because it changes for other
reasons (bytes on disk and on the changelog, recovery time) and must keep reading every format
ever written: a data dir or changelog from an older release recovers unchanged.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson
import pyarrow as pa

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
#: zstd from pyarrow (a dependency already) instead of zlib: faster to compress and a little
#: smaller, most for the largest profiles. Quick bench workload, A/B on a loaded 2-core box,
#: CPU µs: encode 56-59 vs 71-95 per user, decode about even (52-65 vs 47-80); heavy user
#: encode 150-250 vs 375-485, decode 220-300 vs 285-375; bytes mean 1,096 vs 1,146, p95 2,157
#: vs 2,435, heavy 9,192 vs 10,381. (A call through pyarrow has a fixed cost: on a median
#: profile zstd decompresses in 11-15 µs, zlib in 12, so small profiles gain only on encode.)
_ZSTD = pa.Codec("zstd", compression_level=1) if pa.Codec.is_available("zstd") else None


def encode_stored(body: dict[str, Any]) -> bytes:
    """``to_dict()`` fields → the stored form (zlib on a pyarrow built without zstd)."""
    if _ZSTD is None:
        return COMPRESSED + zlib.compress(orjson.dumps(body), 1)
    last: list[str] = body.get("li") or []
    joined = _SEP.join(last)
    head = joined.encode()
    if joined.count(_SEP) != max(0, len(last) - 1) or not all(last) or len(head) > 0xFFFF:
        raw = orjson.dumps(body)  # an id the header cannot frame: the list stays in the body
        return ZSTD + _LENGTH.pack(len(raw)) + _ZSTD.compress(raw, asbytes=True)
    raw = orjson.dumps({k: v for k, v in body.items() if k != "li"})
    return HEADED + _HEAD.pack(len(raw), len(head)) + head + _ZSTD.compress(raw, asbytes=True)


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
    if _ZSTD is None:
        raise ValueError("a zstd-stored profile needs pyarrow built with zstd")
    if size > MAX_STORED_JSON:  # a corrupt header must not allocate gigabytes
        raise ValueError(f"stored profile claims {size} bytes of JSON")
    try:
        json = _ZSTD.decompress(frame, size, asbytes=True)
    except (OSError, pa.ArrowException) as exc:  # pyarrow reports a bad frame as OSError
        raise ValueError(f"stored profile: {exc}") from exc
    body: dict[str, Any] = orjson.loads(json)
    return body
