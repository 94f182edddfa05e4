"""The compiled pieces ``candidate_block_kernel`` is made of (numba): the pooled indexes made
unique and filtered, a feature row's weights summed as numpy sums them, and the lookups of the
relation, repeat and view columns.

Why two ways to the unique candidates: sorting the ~800 pooled indexes of a bench ranking
(numba's quicksort, ~60 ns an index) was ~half of the kernel's time (~50 of ~100 µs). A bit
an item over the catalog (pooled, banned, seen: three bitmaps) gives the same sorted, unique
order by walking the words in index order and, in each, its set bits lowest first (one
``cttz`` instruction a bit): ~4 µs for the 8,192 items of the bench. That walk grows with the
catalog (~1 ns a word of 64 items), not the pool, so a catalog much larger than the pool
(``BITS_PER_POOLED``) is still sorted; both ways give the same result.

Why sums without arrays: a row of feature weights summed through a scratch array of eight
running sums allocated that array twice a candidate (~15 µs a ranking); eight local
variables make the same operations in the same order. A row where the user has no weight
for any feature sums to +0.0 whatever its width (every partial sum is 0.0 + 0.0), so it is
not summed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

#: the bitmaps are used while the catalog has at most this many items per pooled index (their
#: walk costs ~1 ns a word of 64 items, a sort ~60 ns a pooled index: about even at ~4,000)
BITS_PER_POOLED = 1024


@intrinsic
def _trailing_zeros(typingctx: Any, word: Any) -> tuple[Any, Callable[..., Any]]:
    """The index of the lowest set bit of a (non-zero) integer: LLVM's ``cttz``, one
    instruction (numba has no function for it)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return word(word), codegen


@numba.njit(cache=True, nogil=True)
def _set_bits(bits: np.ndarray, base: int, indexes: np.ndarray, cap: int) -> None:
    """Set the bits of ``indexes`` in ``[0, cap)`` in the bitmap ``bits[base:]``."""
    one = np.uint64(1)
    for i in range(indexes.size):
        c = indexes[i]
        if 0 <= c < cap:
            bits[base + (c >> 6)] |= one << np.uint64(c & 63)


@numba.njit(cache=True, nogil=True)
def kept_by_bits(
    pooled: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    flags: np.ndarray,
    use_flags: bool,
    banned: np.ndarray,
    seen_keys: np.ndarray,
    cap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The kept candidates (sorted, unique) and which were seen, by bitmaps over the catalog's
    first ``cap`` items: pooled, banned, seen (indexes out of range match no candidate, as in
    the numpy code; the caller checked the pooled ones)."""
    n = (cap + 63) // 64
    bits = np.zeros(3 * n, dtype=np.uint64)
    _set_bits(bits, 0, pooled, cap)
    _set_bits(bits, n, banned, cap)
    _set_bits(bits, 2 * n, seen_keys, cap)
    kept = np.empty(min(pooled.size, cap), dtype=np.int64)
    seen = np.empty(kept.size, dtype=np.bool_)
    one = np.uint64(1)
    m = 0
    for w in range(n):
        word = bits[w] & ~bits[n + w]
        while word:
            b = _trailing_zeros(word)  # type: ignore[call-arg,var-annotated]  # (numba types it)
            word &= word - one
            c = w * 64 + np.int64(b)
            if available[c] > 0 and not deleted[c] and (not use_flags or flags[c]):
                kept[m] = c
                seen[m] = (bits[2 * n + w] >> b) & one != 0
                m += 1
    return kept[:m], seen[:m]


@numba.njit(cache=True, nogil=True)
def kept_by_sorting(
    pooled: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    flags: np.ndarray,
    use_flags: bool,
    banned: np.ndarray,
    seen_keys: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``kept_by_bits``' result by sorting the pool (for a catalog much larger than it)."""
    ordered = np.sort(pooled)
    kept = np.empty(ordered.size, dtype=np.int64)
    banned_sorted = np.sort(banned)
    m = 0
    b = 0
    for i in range(ordered.size):
        c = ordered[i]
        if i > 0 and c == ordered[i - 1]:
            continue
        while b < banned_sorted.size and banned_sorted[b] < c:
            b += 1
        if b < banned_sorted.size and banned_sorted[b] == c:
            continue
        if available[c] > 0 and not deleted[c] and (not use_flags or flags[c]):
            kept[m] = c
            m += 1
    cands = kept[:m]
    seen = np.zeros(m, dtype=np.bool_)
    seen_sorted = np.sort(seen_keys)
    k = 0
    for c in range(m):
        while k < seen_sorted.size and seen_sorted[k] < cands[c]:
            k += 1
        seen[c] = k < seen_sorted.size and seen_sorted[k] == cands[c]
    return cands, seen


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray, n: int) -> float:
    """``a[:n].sum()`` as numpy adds a row of up to 128 values: fewer than 8 one by one, else
    eight running sums over the multiple-of-8 part, combined in pairs, then the rest one by
    one (numpy's ``pairwise_sum`` below its block size); the reduction starts from 0.0."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return 0.0 + res
    r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
    r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
    i = 8
    while i < n - (n % 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return 0.0 + res


#: Knuth's multiplicative hash constant (the user's feature ids into an open-addressing table)
_HASH = 2654435761


@numba.njit(cache=True, nogil=True)
def id_table(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """An open-addressing table of ``ids`` (distinct, > 0): keys, their positions, mask. At
    ~4 slots an id a lookup takes ~1 probe: half the time of a binary search over the few
    hundred ids of a heavy user, and as fast as the dense vocabulary-sized vectors were."""
    size = 16
    while size < 4 * ids.size:
        size *= 2
    mask = size - 1
    keys = np.full(size, -1, dtype=np.int64)
    slot = np.empty(size, dtype=np.int64)
    for k in range(ids.size):
        h = (ids[k] * _HASH) & mask
        while keys[h] != -1:
            h = (h + 1) & mask
        keys[h] = ids[k]
        slot[h] = k
    return keys, slot, mask


@numba.njit(cache=True, nogil=True)
def position(keys: np.ndarray, slot: np.ndarray, mask: int, f: int) -> int:
    """Where feature ``f`` is in the user's ids (``id_table``), or -1 (PAD, 0, never is)."""
    if f <= 0:
        return -1
    h = (f * _HASH) & mask
    while keys[h] != -1:
        if keys[h] == f:
            return slot[h]
        h = (h + 1) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def merge_into(
    keys: np.ndarray, vals: np.ndarray, cands: np.ndarray, values: np.ndarray, col: int
) -> None:
    """``values[i, col] = vals[k]`` where ``cands[i] == keys[k]`` (both sorted; of repeated
    keys the first): one merge walk, into the (zero) column in place."""
    k = 0
    for c in range(cands.size):
        while k < keys.size and keys[k] < cands[c]:
            k += 1
        if k < keys.size and keys[k] == cands[c]:
            values[c, col] = vals[k]


@numba.njit(cache=True, nogil=True)
def scaled(values: np.ndarray, col: int) -> None:
    """``rel / max(1e-9, rel.max()) if rel.any() else rel`` on one column, in place."""
    n = values.shape[0]
    top = values[0, col]
    anything = False
    for i in range(n):
        v = values[i, col]
        if v != 0.0:
            anything = True
        if np.isnan(v) or (not np.isnan(top) and v > top):  # numpy's max propagates NaN
            top = v
    if not anything:
        return
    d = top if top > 1e-9 else 1e-9  # max(1e-9, nan) is 1e-9, as in Python
    for i in range(n):
        values[i, col] = values[i, col] / d


@numba.njit(cache=True, nogil=True)
def sparse_into(
    keys: np.ndarray, vals: np.ndarray, cands: np.ndarray, values: np.ndarray, col: int
) -> None:
    """``values[i, col] = vals[k]`` where ``cands[i] == keys[k]`` (keys in any order)."""
    for k in range(keys.size):
        pos = np.searchsorted(cands, keys[k])
        if pos < cands.size and cands[pos] == keys[k]:
            values[pos, col] = vals[k]
