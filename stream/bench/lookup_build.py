"""What a full lookup build costs as the catalog grows: exact against approximate, same run.

Why this exists: a worker that finds no published lookup builds one before it serves, and
`recstream model index` builds one for a deployment. The exact build compares every query
with every target (quadratic); the approximate one (``stream.domain.lookup_ivf``) compares
each query with its nearest inverted lists and keeps its rows only if a sample of exact rows
says they hold ≥ ``MIN_RECALL`` of the exact targets. This tool times both on real item
embeddings: Complete Journey's products through the bundled encoder (68,260 items), in
prefixes of growing size; then larger catalogs made of every product and jittered copies of
it (each copy its product's three embeddings plus Gaussian noise, renormalised: the shape of
a catalog with that many variants), where the exact build's time is extrapolated from the
largest measured one's cost per pair (marked so), and the approximate rows are compared with
exact rows on a sample of queries (the build's own check). At every size it also times an
update of ``UPDATE`` catalog changes into the built lookup both ways: every pair compared, as
updates were, and as a worker does it now (``stream.domain.lookup_updates``); and that update
staged beside the lookup, as a serving worker's thread computes it (``lookup_patch``), against
the full copy of the lookup it used to make.

Run::

    python -m stream.bench.lookup_build --out reports/lookup

It writes ``lookup_build.json``, ``lookup_build.md`` and ``lookup_build.png`` (~6 minutes).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.domain import lookup_patch, lookup_updates
from stream.domain.lookup import EXACT_MAX, ROLES, QueryTargetLookup

#: prefixes of the real catalog built both ways (the last: all of it)
SIZES: tuple[int, ...] = (5_000, 10_000, 20_000, 40_000, 0)
#: larger catalogs: the real one with this many jittered copies of each item (approximate only)
COPIES: tuple[int, ...] = (2, 4)
JITTER = 0.05
K = 20
#: an update: this many catalog changes, half of them changed items, half new ones
UPDATE = 1024


def say(text: str) -> None:
    print(f"[lookup] {text}", flush=True)


def jittered(emb: np.ndarray, copies: int, seed: int = 0) -> np.ndarray:
    """``emb`` (3, n, d) and ``copies - 1`` noisy copies of every item, renormalised."""
    rng = np.random.default_rng(seed)
    parts = [emb]
    for _ in range(copies - 1):
        noisy = emb + JITTER * rng.standard_normal(emb.shape).astype(np.float32)
        parts.append(noisy / np.linalg.norm(noisy, axis=2, keepdims=True))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _timed_build(emb: np.ndarray, exact_max: int) -> tuple[QueryTargetLookup, float]:
    lookup = QueryTargetLookup([f"i{n}" for n in range(emb.shape[1])], emb, k=K)
    started = time.perf_counter()
    lookup.build(exact_max=exact_max)
    return lookup, time.perf_counter() - started


def _seconds(value: float) -> float:
    """Three significant digits: a build of a few thousand items takes milliseconds since the
    compiled top-k, which two decimals rounded to 0."""
    return float(f"{value:.3g}")


def both_ways(emb: np.ndarray) -> dict[str, Any]:
    """One catalog built exactly and approximately: seconds, ratio, what the check measured,
    and how many rows came out identical."""
    exact, exact_s = _timed_build(emb, exact_max=emb.shape[1])
    approx, approx_s = _timed_build(emb, exact_max=0)
    identical = {
        role: round(float((approx.rows[role] == exact.rows[role]).all(axis=1).mean()), 4)
        for role in ROLES
    }
    return _approximate(approx, approx_s, emb) | {
        "exact_s": _seconds(exact_s),
        "speedup": round(exact_s / approx_s, 2),
        "rows_identical": identical,
        "exact_ns_per_pair": round(exact_s / emb.shape[1] ** 2 * 1e9, 2),
    }


def update_both_ways(built: QueryTargetLookup, emb: np.ndarray, seed: int = 1) -> dict[str, Any]:
    """One batch of ``UPDATE`` changes (half the items moved by JITTER, half new jittered
    copies) into copies of ``built``: every pair compared (the exact path, as before), and
    as a worker does it (``lookup_updates``: the bounded merge, and rows through the target
    lists above ``EXACT_MAX`` items, checked), with the share of rows the two leave equal.
    The worker's groupings are made first and timed apart (once per lookup)."""
    n = len(built)
    count = min(UPDATE, n)
    half = count // 2
    picked = np.random.default_rng(seed).choice(n, count, replace=False)
    moved = jittered(emb[:, picked], 2, seed)[:, count:]  # (the noisy copy of each)
    ids = [built.ids[i] for i in picked[:half]] + [f"new{j}" for j in range(half)]
    times, rows = {}, {}
    for way in ("exact", "worker"):
        lookup = built.copy(n + half)
        lookup.exact_max = EXACT_MAX if way == "worker" else n + count  # (never above)
        grouping = 0.0
        if way == "worker":
            started = time.perf_counter()
            lookup_updates.place(lookup, np.zeros(0, dtype=np.int64))
            grouping = time.perf_counter() - started
        minimum = lookup_updates.MERGE_LISTS_MIN
        lookup_updates.MERGE_LISTS_MIN = minimum if way == "worker" else count + 1
        try:
            started = time.perf_counter()
            lookup.upsert(ids, moved)
            times[way] = time.perf_counter() - started
        finally:
            lookup_updates.MERGE_LISTS_MIN = minimum
        rows[way] = lookup
    same = {
        role: round(float((rows["exact"].rows[role] == rows["worker"].rows[role]).all(1).mean()), 4)
        for role in ROLES
    }
    return {
        "update_exact_s": _seconds(times["exact"]),
        "update_worker_s": _seconds(times["worker"]),
        "update_grouping_s": _seconds(grouping),
        "update_rows_identical": same,
    } | staged_update(built, ids, moved, rows["worker"])


def staged_update(
    built: QueryTargetLookup, ids: list[str], moved: np.ndarray, worker: QueryTargetLookup
) -> dict[str, Any]:
    """The same update as a serving worker computes it in its thread: staged beside the lookup
    in use (``lookup_patch``), then written into it on the loop, against what it did before,
    a full copy to update; the copy's seconds and bytes, the journal's, and whether the rows
    come out as the worker way's above (they must: the same computation)."""
    new = sum(1 for i in ids if i not in built.index)
    room = built.copy(lookup_patch.capacity_for(built, new))  # (after a worker's first copy)
    room.exact_max = EXACT_MAX
    lookup_updates.place(room, np.zeros(0, dtype=np.int64))  # (as the worker way: timed apart)
    started = time.perf_counter()
    copied = room.copy(len(room) + new)
    copy_s = time.perf_counter() - started
    copy_bytes = sum(buffer.nbytes for buffer in copied._buffers.values())
    del copied
    started = time.perf_counter()
    staged = lookup_patch.stage(room, new)
    assert staged is not None
    staged.upsert(ids, moved)
    staged_s = time.perf_counter() - started
    written = lookup_patch.summary(staged)
    started = time.perf_counter()
    result = lookup_patch.settled(staged)  # (the copy it turned into, if it did: the thread)
    staged_s += time.perf_counter() - started
    started = time.perf_counter()
    if result is staged:  # (on the loop; a copy is swapped in)
        result = lookup_patch.install(staged)
    install_s = time.perf_counter() - started
    same = {r: bool(np.array_equal(result.rows[r], worker.rows[r])) for r in ROLES}
    return {
        "update_copy_s": round(copy_s, 3),
        "update_copy_mb": round(copy_bytes / 2**20, 1),
        "update_staged_s": _seconds(staged_s),
        "update_kept_as": "staged" if result is room else "copy",
        "update_install_ms": round(install_s * 1e3, 2),
        "update_journal_mb": round(written["journal_bytes"] / 2**20, 2),
        "update_rows_written": written["rows"],
        "update_staged_same_rows": same,
    }


def approximate_only(emb: np.ndarray, ns_per_pair: float) -> dict[str, Any]:
    """A catalog too large to build exactly here: the approximate build, and the exact one's
    time extrapolated from ``ns_per_pair`` (the largest measured exact build's)."""
    approx, approx_s = _timed_build(emb, exact_max=0)
    exact_s = ns_per_pair * emb.shape[1] ** 2 / 1e9
    return _approximate(approx, approx_s, emb) | {
        "exact_s_extrapolated": round(exact_s, 1),
        "speedup_extrapolated": round(exact_s / approx_s, 1),
    }


def _approximate(approx: QueryTargetLookup, seconds: float, emb: np.ndarray) -> dict[str, Any]:
    """What every row says of the approximate build: its size, time and check, and an update
    of ``UPDATE`` changes into it, both ways."""
    return {
        "items": len(approx),
        "approximate_s": _seconds(seconds),
        "approximate": bool(approx.recall),
        "sampled_recall": {r: round(v, 4) for r, v in approx.recall.items()},
    } | _update(approx, emb)


def measure(
    emb: np.ndarray, sizes: Sequence[int] = SIZES, copies: Sequence[int] = COPIES
) -> dict[str, Any]:
    """Every size built both ways (0: the whole of ``emb``), then the jittered catalogs."""
    measured = []
    for size in sizes:
        n = emb.shape[1] if size <= 0 else min(size, emb.shape[1])
        say(f"{n:,} items, exact then approximate ...")
        part = np.ascontiguousarray(emb[:, :n])
        row = both_ways(part)
        measured.append(row)
        say(f"{n:,} items: exact {row['exact_s']} s, approximate {row['approximate_s']} s")
    larger = []
    per_pair = measured[-1]["exact_ns_per_pair"] if measured else 0.0
    for count in copies:
        big = jittered(emb, count)
        say(f"{big.shape[1]:,} items ({count} per product), approximate ...")
        row = approximate_only(big, per_pair)
        larger.append(row)
        say(f"{big.shape[1]:,} items: approximate {row['approximate_s']} s")
    return {"k": K, "jitter": JITTER, "measured": measured, "larger": larger}


def _update(built: QueryTargetLookup, emb: np.ndarray) -> dict[str, Any]:
    say(f"{len(built):,} items: an update of {UPDATE:,} changes, both ways ...")
    row = update_both_ways(built, emb)
    say(f"update exact {row['update_exact_s']} s, as a worker does {row['update_worker_s']} s")
    return row


def markdown(result: dict[str, Any], source: str) -> str:
    lines = [
        "# Lookup build: exact against approximate",
        "",
        f"Item embeddings: {source}; top-{result['k']} rows for both roles; one run.",
        "",
        "| items | exact s | approximate s | speedup | kept approximate | sampled recall "
        "(view / buy) | rows identical to exact (view / buy) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["measured"]:
        rec, same = r["sampled_recall"], r["rows_identical"]
        lines.append(
            f"| {r['items']:,} | {r['exact_s']} | {r['approximate_s']} | {r['speedup']}× | "
            f"{'yes' if r['approximate'] else 'no (built exactly)'} | "
            f"{rec.get('view', '-')} / {rec.get('buy', '-')} | {same['view']} / {same['buy']} |"
        )
    for r in result["larger"]:
        rec = r["sampled_recall"]
        lines.append(
            f"| {r['items']:,} (jittered copies) | ~{r['exact_s_extrapolated']} "
            f"(extrapolated) | {r['approximate_s']} | ~{r['speedup_extrapolated']}× | "
            f"{'yes' if r['approximate'] else 'no (built exactly)'} | "
            f"{rec.get('view', '-')} / {rec.get('buy', '-')} | - |"
        )
    lines += [
        "",
        f"An update of {UPDATE:,} catalog changes (half of them items moved by the jitter, half "
        "new items): every pair compared, as before, against what a worker does now "
        "(`stream/domain/lookup_updates.py`; its groupings made once, timed apart).",
        "",
        "| items | exact s | as a worker does it s | groupings (once) s | rows identical "
        "(view / buy) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in result["measured"] + result["larger"]:
        same = r["update_rows_identical"]
        lines.append(
            f"| {r['items']:,} | {r['update_exact_s']} | {r['update_worker_s']} | "
            f"{r['update_grouping_s']} | {same['view']} / {same['buy']} |"
        )
    lines += [
        "",
        "The same update as a serving worker computes it in its thread, staged beside the lookup "
        "in use and then written into it on the event loop (`stream/domain/lookup_patch.py`), "
        "against a full copy of the lookup to update and swap in (what it did before): the "
        "copy's time and bytes, the rows the update wrote and their journal, and the loop's "
        "time to write them (or swap in a copy). A stage whose journal passes "
        f"{lookup_patch.COPY_SHARE:.1%} of the lookup's bytes turns into a copy in the thread, "
        "swapped in whole; its journal column then says what it held at that point.",
        "",
        "| items | full copy s | full copy MB | staged update s | rows written (view / buy) "
        "| journal MB | handed to the loop | written on the loop ms | rows as the worker way's |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["measured"] + result["larger"]:
        if "update_copy_s" not in r:  # (a report from before the staged updates)
            continue
        w, same = r["update_rows_written"], r["update_staged_same_rows"]
        lines.append(
            f"| {r['items']:,} | {r['update_copy_s']} | {r['update_copy_mb']:,} | "
            f"{r['update_staged_s']} | {w['view']:,} / {w['buy']:,} | "
            f"{r['update_journal_mb']} | {_handed(r)} | {r['update_install_ms']} | "
            f"{'yes' if all(same.values()) else 'NO'} |"
        )
    return "\n".join(lines) + "\n\n![build seconds by items](lookup_build.png)\n"


def _handed(row: dict[str, Any]) -> str:
    """What the thread handed to the loop: the journal, or (most rows written) a copy."""
    return "the journal" if row["update_kept_as"] == "staged" else "a copy, made on the way"


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    m, big = result["measured"], result["larger"]
    ax.plot([r["items"] for r in m], [r["exact_s"] for r in m], "o-", label="exact (measured)")
    if big:
        xs = [m[-1]["items"]] + [r["items"] for r in big]
        ys = [m[-1]["exact_s"]] + [r["exact_s_extrapolated"] for r in big]
        ax.plot(xs, ys, "o:", color="C0", label="exact (extrapolated per pair)")
    every = m + big
    ax.plot(
        [r["items"] for r in every], [r["approximate_s"] for r in every], "s-", label="approximate"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("catalog items")
    ax.set_ylabel("full build, seconds (both roles)")
    ax.set_title("Pfeed lookup build: exact vs inverted lists (checked)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def complete_journey_embeddings() -> np.ndarray:
    """Complete Journey's products through the bundled encoder (sorted by id: a fixed order)."""
    from stream.adapters.encoder import OnnxItemEncoder
    from stream.datasets import load_subset

    say("embedding the Complete Journey catalog with the bundled encoder ...")
    catalog = sorted(load_subset("completejourney", None, 0).catalog, key=lambda m: m["item_id"])
    return OnnxItemEncoder().embed([dict(m) for m in catalog])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/lookup"))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="0: every item")
    parser.add_argument("--copies", default=",".join(map(str, COPIES)), help="'' for none")
    args = parser.parse_args(argv)
    emb = complete_journey_embeddings()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    copies = [int(c) for c in args.copies.split(",") if c]
    result = measure(emb, sizes, copies)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lookup_build.json").write_text(json.dumps(result, indent=2) + "\n")
    source = f"Complete Journey products ({emb.shape[1]:,}) through the bundled encoder"
    (args.out / "lookup_build.md").write_text(markdown(result, source))
    plot(result, args.out / "lookup_build.png")
    say(f"wrote {args.out}/lookup_build.json, .md and .png")


if __name__ == "__main__":
    main()
