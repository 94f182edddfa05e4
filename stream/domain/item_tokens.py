"""An item's content as fixed-length token ids: the input of the Pfeed item encoder.

Training (``models/pfeed``) and the runtime encoder (``stream/adapters/encoder.py``) both call
this module, so an item is tokenised identically when the model learns and when it is served;
a drift between the two would silently degrade every embedding.

Tokens, in slot order (truncated to ``max_len``):

1. ``id bucket``: a stable hash of the item id into ``id_buckets`` shared slots. Always present,
   so an item without attributes (real feeds have them) still gets an embedding, and warm items
   get some per-item capacity on top of their content.
2. ``cat:<level>`` for every level of the category path (or every genre of a genre list).
3. The other attributes as the sparse features of ``stream.domain.features`` (``brand:x``,
   ``manufacturer:x``, ``size:x``, ``price_band:n``, boolean attribute flags as ``name:true``).
4. ``title:<word>`` for up to ``TITLE_WORDS`` alphabetic title words.

The commerce flags ``deal`` and ``new`` are *not* tokens: they flip weekly, and "X for you" feeds
apply them as read-time restrictions of the targets, so they must not move the embedding.
Token strings outside the vocabulary are dropped (the vocabulary keeps tokens seen
``min_count`` times in training).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.domain.features import attribute_features, norm

PAD = 0
UNK = 1
N_SPECIAL = 2
MAX_LEN = 16
ID_BUCKETS = 2048
TITLE_WORDS = 6
VOCAB_FORMAT = 1
_WORD = re.compile(r"[a-z]{2,}")


def id_bucket(item_id: str, buckets: int) -> int:
    """Stable across processes and machines (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def content_tokens(message: Mapping[str, Any]) -> list[str]:
    """Content token strings of a catalog message (no id bucket), deduplicated, in slot order."""
    attributes = message.get("attributes")
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    out: dict[str, None] = {}
    category = attrs.get("category")
    levels = [category] if isinstance(category, str) else category
    if isinstance(levels, list | tuple):
        for level in levels:
            text = norm(level) if level is not None else ""
            if text:
                out.setdefault(f"cat:{text}", None)
    for name, value in attrs.items():
        if norm(name) == "category":
            continue
        for feature in attribute_features(name, value):
            out.setdefault(feature, None)
    title = message.get("title")
    if isinstance(title, str):
        for word in _WORD.findall(title.lower())[:TITLE_WORDS]:
            out.setdefault(f"title:{word}", None)
    return list(out)


@dataclass(frozen=True)
class ItemTokenizer:
    """Maps catalog messages to ``(max_len,)`` int64 rows; id 0 pads, ids are stable per vocab."""

    tokens: tuple[str, ...]
    max_len: int = MAX_LEN
    id_buckets: int = ID_BUCKETS

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: N_SPECIAL + i for i, t in enumerate(self.tokens)})

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.tokens) + self.id_buckets

    def encode(self, message: Mapping[str, Any]) -> np.ndarray:
        """One item's token ids: id bucket first, then known content tokens, zero-padded."""
        ids: dict[str, int] = self._ids  # type: ignore[attr-defined]
        row = np.zeros(self.max_len, dtype=np.int64)
        bucket = id_bucket(str(message["item_id"]), self.id_buckets)
        row[0] = N_SPECIAL + len(self.tokens) + bucket
        n = 1
        for token in content_tokens(message):
            tid = ids.get(token)
            if tid is not None:
                row[n] = tid
                n += 1
                if n == self.max_len:
                    break
        return row

    def encode_many(self, messages: Iterable[Mapping[str, Any]]) -> np.ndarray:
        rows = [self.encode(m) for m in messages]
        if not rows:
            return np.zeros((0, self.max_len), dtype=np.int64)
        return np.stack(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": VOCAB_FORMAT,
            "max_len": self.max_len,
            "id_buckets": self.id_buckets,
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> ItemTokenizer:
        if body.get("format") != VOCAB_FORMAT:
            raise ValueError(f"vocabulary format {body.get('format')!r}, expected {VOCAB_FORMAT}")
        return cls(tuple(body["tokens"]), int(body["max_len"]), int(body["id_buckets"]))


def build_tokenizer(
    messages: Iterable[Mapping[str, Any]],
    min_count: int = 2,
    max_len: int = MAX_LEN,
    id_buckets: int = ID_BUCKETS,
) -> ItemTokenizer:
    """Vocabulary of the content tokens seen at least ``min_count`` times, in a deterministic
    order (count descending, then text), so the same catalog always gives the same ids."""
    counts: Counter[str] = Counter()
    for message in messages:
        counts.update(content_tokens(message))
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return ItemTokenizer(tuple(kept), max_len, id_buckets)
