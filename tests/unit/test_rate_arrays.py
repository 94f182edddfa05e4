"""The learned rates read through arrays (``stream.domain.rate_arrays``) are the scalar
rates, to the last bit, whatever happened between two reads."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain.catalog import Catalog
from stream.domain.learned import PRIOR_STRENGTH, RateTable
from stream.domain.rate_arrays import ARRAYS_FROM, RateArrays, rates_for
from stream.domain.signals import category_of

ITEMS = [f"i{n}" for n in range(8)]
CATEGORIES = ["dairy", "bread", "tea"]

_step = st.one_of(
    # counts on an item (with the category the catalog gives it now, as the learner does)
    st.tuples(
        st.just("adjust"),
        st.sampled_from(ITEMS),
        st.sampled_from([1.0, 0.0, -1.0]),
        st.sampled_from([1.0, 0.0, -1.0]),
    ),
    # a catalog message: a new item, or a known one moved to another category (or none)
    st.tuples(st.just("catalog"), st.sampled_from(ITEMS), st.sampled_from([*CATEGORIES, None])),
    # another worker's counts merged in
    st.tuples(
        st.just("merge"),
        st.sampled_from(ITEMS),
        st.sampled_from([f"category:{c}" for c in CATEGORIES]),
    ),
    st.tuples(st.just("read"), st.lists(st.sampled_from([*ITEMS, "unknown"]), max_size=10)),
)


def _message(item_id: str, category: str | None) -> dict[str, Any]:
    attributes = {"category": category} if category else {}
    return {"item_id": item_id, "title": item_id, "ts": 1, "attributes": attributes}


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=40), st.sampled_from([ITEMS[:3], []]))
def test_every_read_equals_the_scalar_rates(steps: list[tuple[Any, ...]], first: list[str]) -> None:
    catalog = Catalog(capacity=2)  # small: the catalog grows while the table is read
    for item_id in first:
        catalog.upsert(_message(item_id, "dairy"))
    table = RateTable()
    category = category_of(catalog)
    for step in steps:
        if step[0] == "adjust":
            _, item_id, successes, trials = step
            table.adjust(item_id, category(item_id), successes, trials)
        elif step[0] == "catalog":
            catalog.upsert(_message(step[1], step[2]))
        elif step[0] == "merge":
            other = RateTable()
            other.add(step[1], step[2], success=True)
            table.merge(other)
        else:
            ids = step[1]  # read through the arrays, however few
            assert rates_for(table, ids, catalog, PRIOR_STRENGTH, 0) == table.rates(ids, category)
    ids = [*ITEMS, "unknown"]
    assert rates_for(table, ids, catalog, PRIOR_STRENGTH, 0) == table.rates(ids, category)


def test_few_items_are_read_one_by_one_and_many_through_the_arrays() -> None:
    catalog = Catalog()
    ids = [f"i{n}" for n in range(2 * ARRAYS_FROM)]
    for n, item_id in enumerate(ids):
        catalog.upsert(_message(item_id, CATEGORIES[n % 3]))
    table = RateTable()
    for n, item_id in enumerate(ids[::2]):
        table.add(item_id, catalog.category_name(item_id), success=n % 3 == 0)
    few = ids[: ARRAYS_FROM - 1]
    assert table.rates_for(few, catalog) == table.rates(few, category_of(catalog))
    assert table.reader is None  # (no arrays made for a handful of items)
    assert table.rates_for(ids, catalog) == table.rates(ids, category_of(catalog))
    assert isinstance(table.reader, RateArrays)
    assert table.rates_for([], catalog) == {}


def test_a_table_read_for_another_catalog_gets_a_reader_of_its_own() -> None:
    one, two = Catalog(), Catalog()
    one.upsert(_message("a", "dairy"))
    two.upsert(_message("a", "tea"))
    table = RateTable()
    table.add("a", "category:tea", success=True)
    table.add("b", "category:tea", success=False)
    assert rates_for(table, ["a"], one, PRIOR_STRENGTH, 0) == table.rates(["a"], category_of(one))
    assert isinstance(table.reader, RateArrays) and table.reader.catalog is one
    assert rates_for(table, ["a"], two, PRIOR_STRENGTH, 0) == table.rates(["a"], category_of(two))
    assert table.reader.catalog is two
    # the category counts matter on the second catalog only ("a" is tea there), and a
    # write after the switch is read by the new reader
    table.add("c", "category:tea", success=False)
    assert rates_for(table, ["a"], two, PRIOR_STRENGTH, 0) == table.rates(["a"], category_of(two))
    assert table.rates(["a"], category_of(one)) != table.rates(["a"], category_of(two))


def test_the_reader_is_not_part_of_the_counts() -> None:
    catalog = Catalog()
    catalog.upsert(_message("a", "dairy"))
    read, unread = RateTable(), RateTable()
    for table in (read, unread):
        table.add("a", "category:dairy", success=True)
    rates_for(read, ["a"], catalog, PRIOR_STRENGTH, 0)
    assert read.reader is not None
    assert read == unread and read.to_dict() == unread.to_dict()
