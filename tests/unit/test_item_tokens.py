"""The shared item tokenizer: stable ids, id bucket for bare items, no volatile flags."""

from __future__ import annotations

import numpy as np

from stream.domain.item_tokens import (
    N_SPECIAL,
    ItemTokenizer,
    build_tokenizer,
    content_tokens,
    id_bucket,
)

MILK = {
    "item_id": "1",
    "title": "Fluid Milk White",
    "attributes": {
        "category": ["Dairy", "Milk", "Fluid Milk"],
        "brand": "Private",
        "size": "1 GA",
        "price": 2.5,
        "organic": True,
    },
    "flags": {"deal": True, "new": False},
}


def test_content_tokens_cover_path_attributes_and_title_but_not_commerce_flags() -> None:
    tokens = content_tokens(MILK)
    assert tokens[:3] == ["cat:dairy", "cat:milk", "cat:fluid milk"]
    assert {"brand:private", "size:1 ga", "price_band:4", "organic:true"} <= set(tokens)
    assert {"title:fluid", "title:milk", "title:white"} <= set(tokens)
    assert not any("deal" in t or "new" in t for t in tokens)


def test_deal_flag_does_not_change_the_tokens() -> None:
    tok = build_tokenizer([MILK, MILK])
    flipped = {**MILK, "flags": {"deal": False, "new": True}}
    assert np.array_equal(tok.encode(MILK), tok.encode(flipped))


def test_vocabulary_keeps_frequent_tokens_and_orders_deterministically() -> None:
    other = {"item_id": "2", "attributes": {"category": ["Dairy"], "brand": "National"}}
    tok = build_tokenizer([MILK, other, other], min_count=2)
    assert tok.tokens == ("cat:dairy", "brand:national")  # 3 and 2 occurrences
    again = build_tokenizer([other, MILK, other], min_count=2)
    assert again.tokens == tok.tokens


def test_encode_puts_the_id_bucket_first_and_pads_with_zero() -> None:
    tok = build_tokenizer([MILK, MILK], max_len=8, id_buckets=16)
    row = tok.encode(MILK)
    assert row.shape == (8,) and row.dtype == np.int64
    assert row[0] == N_SPECIAL + len(tok.tokens) + id_bucket("1", 16)
    assert (row[1:] >= N_SPECIAL).all() and (row[1:] < N_SPECIAL + len(tok.tokens)).all()
    assert row.max() < tok.vocab_size


def test_item_without_attributes_still_gets_a_token() -> None:
    tok = build_tokenizer([MILK, MILK], id_buckets=64)
    row = tok.encode({"item_id": "bare"})
    assert row[0] == N_SPECIAL + len(tok.tokens) + id_bucket("bare", 64)
    assert (row[1:] == 0).all()


def test_id_bucket_is_stable_and_spreads() -> None:
    assert id_bucket("12345", 2048) == id_bucket("12345", 2048)
    buckets = {id_bucket(str(i), 64) for i in range(1000)}
    assert len(buckets) > 50


def test_round_trip_through_dict() -> None:
    tok = build_tokenizer([MILK, MILK], max_len=10, id_buckets=32)
    back = ItemTokenizer.from_dict(tok.to_dict())
    assert back == tok
    assert np.array_equal(back.encode_many([MILK]), tok.encode_many([MILK]))
