"""Which items a user's list lost to stock-outs: the users an item's return refreshes.

A stock-out re-ranks the item's holders (``stream.domain.holders``), and their new lists no
longer hold it, so the holders index forgets them. Without another record an item coming back
changed nothing until each shopper's next event, though an item coming back should change the
list within milliseconds as its going out does. So each list remembers, in the profile
(``UserProfile.lost``), the items of the list before it that are out of stock or deleted now,
and keeps those it remembered that still are. The stock index inverts them
(``StockIndex.lost``): an item's return refreshes the users whose lists lost it.

Kept in the profile rather than in the worker's memory, so a restart or a partition move
keeps it: the rebuilt index reads it from the stored header, beside the last list
(``profile_codec.LISTED``), without decompressing the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from stream.domain.catalog import Catalog

#: items a profile remembers as lost, newest first (a list holds ~20-50; the rest would be
#: items out for a long time, whose return the user's next event still answers)
MAX_LOST = 64


def lost_items(previous: Sequence[str], lost: Sequence[str], catalog: Catalog) -> list[str]:
    """What to remember once a new list replaces ``previous``: the items of ``previous``, then
    of ``lost``, that are out of stock or deleted now (ranking never lists such an item, so they
    are exactly what the list lost to the stock), each once, at most ``MAX_LOST``. An id the
    catalog does not know is not remembered: only a known item can come back."""
    if not previous and not lost:
        return []
    order = list(dict.fromkeys(chain(previous, lost)))
    index = catalog.index
    idx = np.fromiter((index.get(i, -1) for i in order), dtype=np.int64, count=len(order))
    known = idx >= 0
    gone = np.zeros(len(order), dtype=bool)
    gone[known] = ~catalog.eligible(idx[known])
    return [order[k] for k in np.flatnonzero(gone)[:MAX_LOST].tolist()]
