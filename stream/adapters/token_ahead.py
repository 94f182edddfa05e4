"""Catalog messages tokenised ahead, a slice per user batch, before their update starts.

Why: a catalog update starts with a token check on the event loop (does a message change its
item's content tokens? only those are embedded again). For 1,024 messages that was 14–24 ms
of Python in one piece, inside the user batch that started the update: the largest part of
the loop's longest stall during a bulk catalog import, after the hand-over of the messages,
which the catalog replica already slices (``follower.YIELD_EVERY_S``). A message's tokens
depend only on the message and the encoder's vocabulary, so they can be made ahead, a slice
at a time, while the messages wait for the update (its gap, the thread's rest, the update
in flight); the update starts once its batch is tokenised, and ``LiveLookup.prepare`` takes
the rows instead of tokenising again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np

#: messages tokenised per call of ``TokensAhead.advance`` (one user batch): ~4–6 ms of the loop
TOKEN_SLICE = 256

Message = Mapping[str, Any]


class TokensAhead:
    """Token rows of pending catalog messages, by item, each with the message it was made
    from (a message replaced since is tokenised again)."""

    def __init__(self, encode: Callable[[Message], np.ndarray]) -> None:
        self.encode = encode
        #: per item: the message tokenised and its row (None for a deletion: no tokens)
        self._rows: dict[str, tuple[Message, np.ndarray | None]] = {}

    def advance(self, pending: Mapping[str, Message], upto: int, limit: int = 0) -> bool:
        """Tokenise at most ``limit`` (``TOKEN_SLICE`` when 0) of the first ``upto``
        ``pending`` messages (by item, in their order) not tokenised yet; True when all of
        those are."""
        limit = limit or TOKEN_SLICE
        made = 0
        for item_id, message in islice(pending.items(), upto):
            held = self._rows.get(item_id)
            if held is not None and held[0] is message:
                continue
            if made == limit:
                return False
            row = None if message.get("deleted") else self.encode(message)
            self._rows[item_id] = (message, row)
            made += 1
        return True

    def take(self, batch: Sequence[Message]) -> dict[str, np.ndarray]:
        """The rows made ahead for ``batch``'s messages, by item (forgotten here)."""
        out: dict[str, np.ndarray] = {}
        for message in batch:
            item_id = str(message["item_id"])
            held = self._rows.pop(item_id, None)
            if held is not None and held[0] is message and held[1] is not None:
                out[item_id] = held[1]
        return out

    def __len__(self) -> int:
        return len(self._rows)
