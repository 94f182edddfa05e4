"""What the warm-up fit learns beyond signal weights: whether the learned-rate bans of viewed /
bought items stay, and weights for shops whose buyers are new (nothing personal to go by)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stream.domain.ranking import BUILTIN_PROFILES, RankingProfile
from stream.domain.signals import SIGNALS
from stream.evaluation.fit_eligibility import LowRates, relaxed, restrict
from stream.evaluation.fit_ranking import LoggedList, RankingFitter
from stream.evaluation.prequential import EvalConfig, evaluate
from tests.unit.more_shops import cold, make


def eligibility_log(i: int, bought_low_seen: bool) -> LoggedList:
    """20 candidates ranked by popularity; the 3 last are viewed items whose learned
    view-return rate is under the floor. The purchase is one of those (the item in the cart)
    or the best of the others. Logged as the engine shows it (the 17 others) with the list
    without the ban beside it."""
    values = np.zeros((20, len(SIGNALS)), dtype=np.float32)
    values[:, SIGNALS.index("popularity")] = np.linspace(1.0, 0.1, 20)
    values[17:, SIGNALS.index("view_return")] = 1.0
    labels = np.zeros(20, dtype=bool)
    labels[18 if bought_low_seen else 0] = True
    low_seen = np.arange(20) >= 17
    wide = LoggedList(i, i, values, labels, 1, seen=low_seen, low=LowRates(low_seen, None))
    shown = LoggedList(i, i, values[:17], labels[:17], 1, relaxed=wide)
    return shown


def fitted(bought_low_seen: bool) -> tuple[RankingProfile, dict]:
    fitter = RankingFitter(warm_index=100, orders_in_range=100)
    fitter.logs = [eligibility_log(i, bought_low_seen) for i in range(100)]
    return fitter.fit(RankingProfile())


def test_the_ban_on_viewed_items_is_lifted_where_shoppers_buy_them() -> None:
    profile, info = fitted(bought_low_seen=True)
    assert profile.filter_seen is False and profile.filter_purchased is None
    assert info["eligibility"]["lifted"] == ["filter_seen"]
    recall = info["eligibility"]["validation_recall"]
    assert recall["bans kept"] <= 0.0 and recall["filter_seen lifted"] == 1.0  # -1: nothing to fit


def test_the_ban_is_kept_when_lifting_it_does_not_help() -> None:
    profile, info = fitted(bought_low_seen=False)
    assert profile.filter_seen is None  # a tie keeps the ban
    assert info["eligibility"]["lifted"] == []


def test_an_explicit_setting_is_never_changed() -> None:
    fitter = RankingFitter(warm_index=100, orders_in_range=100)
    fitter.logs = [eligibility_log(i, True) for i in range(100)]
    profile, info = fitter.fit(RankingProfile(filter_seen=True))
    assert profile.filter_seen is True and info["eligibility"]["lifted"] == []
    assert relaxed(RankingProfile(filter_seen=True)).filter_seen is True
    assert relaxed(RankingProfile()).filter_seen is False


def test_restrict_drops_what_each_kept_ban_would_drop() -> None:
    log = eligibility_log(0, True)
    assert log.relaxed is not None
    log.relaxed = replace(log.relaxed, low=LowRates(log.relaxed.low.seen, np.arange(20) == 0))
    base = RankingProfile()
    assert restrict([log], base, {}) == [log]  # every ban kept: the list as the engine showed it
    (only_bought,) = restrict([log], base, {"filter_seen": False})
    assert only_bought.values.shape[0] == 19 and bool(only_bought.labels.any())
    (neither,) = restrict([log], base, {"filter_seen": False, "filter_purchased": False})
    assert neither.values.shape[0] == 20 and neither.relaxed is None


@pytest.mark.parametrize("kind", ["browse"])
def test_a_browsing_shop_is_not_lost_to_its_own_batch(kind: str) -> None:
    """Failed before the bans were learned (checked on main): shoppers view a dozen items
    per visit and buy the one they carted, so under 5 % of viewed items are ever bought and
    the learned rate banned every viewed item, the carted one included (Recall@10 0.17 vs
    0.24 for the 24 h batch that had not seen the visit; now 0.98)."""
    catalog, events = make(kind)
    report = evaluate(catalog, events, EvalConfig(dataset=kind, pfeed=False, progress=False))
    methods = report["methods"]
    engine = methods["engine_realtime"]["all"]["recall@10"]
    for other in ("popularity", "buy_again", "cooccurrence_frozen", "engine_batch_24h"):
        assert engine > methods[other]["all"]["recall@10"], (other, methods)
    assert "filter_seen" in report["learned"]["eligibility"]["lifted"]


def test_weights_are_learned_where_every_buyer_is_new() -> None:
    """Failed before first purchases were logged (checked on main: no list logged, hand
    weights kept, Recall@10 0.0067 on the full shop): every user buys once, what sells drifts
    over weeks, and the hand weights rank by all-time popularity (now 0.10 on the full shop,
    from the trend signals)."""
    catalog, events = cold(users=1500)
    runs = {
        name: evaluate(catalog, events, EvalConfig(name, pfeed=False, progress=False, ranking=rp))
        for name, rp in (("learned", None), ("hand", BUILTIN_PROFILES["default"]))
    }
    learned = runs["learned"]["learned"]
    assert learned["outcome"] == "fitted weights used" and learned["lists_fit"] > 100
    assert learned["weights"]["trend_day"] + learned["weights"]["trend_week"] > 0
    recall = {name: r["methods"]["engine_realtime"]["all"]["recall@10"] for name, r in runs.items()}
    assert recall["learned"] > 2 * recall["hand"], recall
    for baseline in ("popularity", "buy_again", "cooccurrence_frozen"):
        assert recall["learned"] > runs["learned"]["methods"][baseline]["all"]["recall@10"]


def test_the_report_says_which_bans_were_lifted() -> None:
    from stream.evaluation.report import _eligibility_lines

    _, info = fitted(bought_low_seen=True)
    (text,) = [line for line in _eligibility_lines(info["eligibility"]) if line]
    assert "lifted for viewed items" in text and "filter_seen lifted 1.0000" in text
    assert _eligibility_lines(None) == []
