"""How much two ranked lists agree: what shadow scoring reports before a profile is promoted.

Both measures work on the top k of each list, where the two lists usually hold partly different
items, so neither needs the lists to be permutations of each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int = 10) -> float:
    """|top-k(a) ∩ top-k(b)| / k: 1 = same items (in any order), 0 = nothing in common.

    Divided by k, not by the shorter list, so two short lists agreeing on their few items do
    not look like two full lists that agree; two empty lists agree (1.0)."""
    top_a, top_b = set(a[:k]), set(b[:k])
    if not top_a and not top_b:
        return 1.0
    return len(top_a & top_b) / k


def rank_correlation(a: Sequence[str], b: Sequence[str], k: int = 10) -> float:
    """Spearman correlation of the top-k lists over the union of their items, an item missing
    from a list placed at rank k + 1 (Fagin, Kumar, Sivakumar 2003, "Comparing top k lists").

    1 = same items in the same order; -1 = reversed; disjoint lists come out negative (each
    list's best items are the other's worst). With no spread in either ranking (at most one
    item in the union) the lists agree exactly or not at all: 1.0 or 0.0."""
    top_a, top_b = list(a[:k]), list(b[:k])
    union = list(dict.fromkeys([*top_a, *top_b]))
    if len(union) < 2:
        return 1.0 if top_a == top_b else 0.0
    # plain Python: at most 2k values, where numpy's per-call overhead would dominate (~100 µs)
    ra, rb = _ranks(top_a, union, k), _ranks(top_b, union, k)
    n = len(union)
    ma, mb = sum(ra) / n, sum(rb) / n
    da = [x - ma for x in ra]
    db = [y - mb for y in rb]
    var_a, var_b = sum(x * x for x in da), sum(y * y for y in db)
    if var_a == 0.0 or var_b == 0.0:
        return 1.0 if top_a == top_b else 0.0
    return sum(x * y for x, y in zip(da, db, strict=True)) / math.sqrt(var_a * var_b)


def _ranks(top: Sequence[str], union: Iterable[str], k: int) -> list[float]:
    position = {item: i + 1 for i, item in enumerate(top)}
    return [float(position.get(item, k + 1)) for item in union]


def hit(interacted: Iterable[str], shown: Sequence[str], k: int = 10) -> bool:
    """Did the user's interaction touch one of the top k items of the list they were shown?"""
    top = set(shown[:k])
    return any(item in top for item in interacted)
