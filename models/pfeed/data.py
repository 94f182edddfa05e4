"""The training corpus: both datasets' catalogs, tokenised, and their mined pairs split by time.

Deterministic for a seed: the same corpus, vocabulary and pairs on every run, so a model, its
vocabulary file and the offline protocol always agree on what was trained and what is held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.pfeed.pairs import Corpus, PairSet, basket_pairs, sequence_pairs
from stream.domain.item_tokens import ItemTokenizer, build_tokenizer

HOLDOUT = 0.1  # latest 10 % of each relation's pairs (by query time) are the test set


@dataclass
class TrainingData:
    corpus: Corpus
    tokenizer: ItemTokenizer
    tokens: np.ndarray  # (items, max_len) int64, corpus order
    train: list[PairSet]
    test: list[PairSet]

    def source_of(self, pairs: PairSet) -> str:
        return pairs.name.split(" ", 1)[0]

    def items_of(self, source: str) -> np.ndarray:
        start, end = self.corpus.ranges[source]
        return np.arange(start, end, dtype=np.int64)


def load_training_data(
    seed: int = 0, max_households: int | None = None, holdout: float = HOLDOUT
) -> TrainingData:
    """Complete Journey (buy→buy) + MovieLens-100K (view→buy, buy→buy), split by time."""
    from stream.datasets.completejourney import load_completejourney
    from stream.datasets.movielens import load_movielens100k

    print("loading Complete Journey and MovieLens-100K …", flush=True)
    cj = load_completejourney(max_households=max_households, seed=seed, deal_updates=False)
    ml = load_movielens100k()
    corpus = Corpus.of({"cj": cj.catalog, "ml": ml.catalog})
    print(f"  corpus: {len(corpus.catalog):,} items {corpus.ranges}", flush=True)
    pair_sets = [basket_pairs(cj.events, corpus, "cj", seed=seed)]
    pair_sets.extend(sequence_pairs(ml.events, corpus, "ml"))
    tokenizer = build_tokenizer(corpus.catalog)
    tokens = tokenizer.encode_many(corpus.catalog)
    train, test = [], []
    for pairs in pair_sets:
        tr, te = pairs.split(holdout)
        train.append(tr)
        test.append(te)
        print(f"  {pairs.name}: {len(tr):,} train / {len(te):,} test pairs", flush=True)
    print(f"  vocabulary: {len(tokenizer.tokens):,} tokens + {tokenizer.id_buckets} id buckets")
    return TrainingData(corpus, tokenizer, tokens, train, test)
