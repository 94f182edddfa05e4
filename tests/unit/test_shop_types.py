"""With no configuration, the engine beats the baselines on shop kinds it was not tuned on.

The shops are synthetic (tests/unit/synthetic_shops.py) and small; the learned parts (repeat
propensities, signal weights, where viewed items go) are learned from each stream's warm-up
exactly as `recstream eval --dataset DIR` does. Both kinds failed before the viewed-items
placement was learned: shoppers who buy what they compared found those items pushed to the
end of a 20-item list, outside the top 10 (here, fashion: Recall@10 0.21 vs buy-again 0.32,
co-occurrence 0.63; now 0.93; pharmacy: 0.59 vs buy-again 0.62; now 0.97).
"""

from __future__ import annotations

from typing import Any

import pytest

from stream.evaluation.prequential import EvalConfig, evaluate
from tests.unit.synthetic_shops import make_shop

BASELINES = ("popularity", "buy_again", "cooccurrence_frozen")


def recall(report: dict[str, Any], method: str) -> float:
    return float(report["methods"][method]["all"]["recall@10"])


@pytest.mark.parametrize("kind", ["fashion", "pharmacy"])
def test_the_default_engine_beats_every_baseline(kind: str) -> None:
    catalog, events = make_shop(kind)
    report = evaluate(catalog, events, EvalConfig(dataset=kind, pfeed=False, progress=False))
    engine = recall(report, "engine_realtime")
    for baseline in BASELINES:
        assert engine > recall(report, baseline), (kind, baseline, engine, report["methods"])
    assert report["learned"]["seen_placement"]["chosen"] == "mixed"
