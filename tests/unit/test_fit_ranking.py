"""Signal weights learned from logged lists; `--profile` parsing; no dataset names in the engine."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream.cli import build_parser
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.ranking import BUILTIN_PROFILES, RankingProfile
from stream.domain.relations import CoOccurrence
from stream.domain.signals import SIGNALS
from stream.evaluation.commands import eval_ranking
from stream.evaluation.fit_ranking import (
    LoggedList,
    RankingFitter,
    best_on,
    conditional_logit,
    non_negative_fit,
    refine,
    validation_recall,
    with_placement,
)

ROOT = Path(__file__).resolve().parents[2]


def synthetic_logs(n: int, seed: int, signal: int) -> list[LoggedList]:
    """Lists of 50 random candidates; the bought item is the one highest on ``signal`` (the
    others are noise), so any sound fit must weigh that signal most."""
    rng = np.random.default_rng(seed)
    logs = []
    for i in range(n):
        values = rng.random((50, len(SIGNALS))).astype(np.float32)
        labels = np.zeros(50, dtype=bool)
        labels[int(np.argmax(values[:, signal]))] = True
        logs.append(LoggedList(i, i, values, labels, 1))
    return logs


def test_listwise_fit_finds_the_signal_that_predicts_purchases() -> None:
    logs = synthetic_logs(200, seed=1, signal=2)
    w = conditional_logit(logs)
    assert int(np.argmax(w)) == 2
    assert w[2] > 5 * np.abs(np.delete(w, 2)).max()
    # ranking by the fitted weights recovers the purchase; uniform weights mostly do not
    assert validation_recall(logs, w, k=1) > 0.6
    assert validation_recall(logs, np.ones(len(SIGNALS)), k=1) < 0.3


def test_non_negative_fit_zeroes_a_signal_that_predicts_against() -> None:
    logs = synthetic_logs(200, seed=2, signal=3)
    for log in logs:  # signal 0 is highest exactly where nothing was bought
        log.values[:, 0] = 1.0 - log.labels
    assert conditional_logit(logs)[0] < 0
    w = non_negative_fit(logs)
    assert (w >= 0).all() and w[0] == 0.0 and w[3] > 0


def test_fitter_keeps_the_hand_profile_without_evidence_and_uses_a_winning_fit() -> None:
    base = RankingProfile()
    empty = RankingFitter(warm_index=100, orders_in_range=0)
    assert empty.fit(base)[0] is base
    fitter = RankingFitter(warm_index=100, orders_in_range=100)
    fitter.logs = synthetic_logs(100, seed=3, signal=4)  # indexes 0..99: split at 80
    fitted, info = fitter.fit(base)
    assert info["lists_fit"] == 80 and info["lists_validation"] == 20
    assert fitted.name == "learned" and fitted.w_repeat == max(fitted.signal_weights())
    assert info["validation_recall"]["fitted"] >= info["validation_recall"]["hand"]
    assert RankingProfile.from_dict(fitted.to_dict()) == fitted


def placement_log(bought_rank_among_seen: int | None) -> LoggedList:
    """18 candidates scored 17..0 on the repeat signal; the 8 best are items the user viewed.
    The purchase is the seen item of the given rank, or (None) the 5th best unseen item."""
    values = np.zeros((18, len(SIGNALS)), dtype=np.float32)
    values[:, SIGNALS.index("repeat")] = np.arange(17, -1, -1)
    seen = np.arange(18) < 8
    labels = np.zeros(18, dtype=bool)
    labels[12 if bought_rank_among_seen is None else bought_rank_among_seen] = True
    return LoggedList(0, 0, values, labels, 1, seen)


def test_validation_recall_places_seen_items_like_the_ranking_does() -> None:
    w = RankingProfile(w_repeat=1.0).signal_weights()
    sixth_seen = [placement_log(6)]  # "after": 5 unseen, then the 5 best seen (ranks 0..4)
    assert validation_recall(sixth_seen, w, placement="mixed") == 1.0
    assert validation_recall(sixth_seen, w, placement="after", tail=5) == 0.0
    assert validation_recall(sixth_seen, w, placement="after", tail=7) == 1.0
    # the bought unseen item is 13th by score: only "after" (unseen first) shows it
    assert validation_recall([placement_log(None)], w, placement="mixed") == 0.0
    assert validation_recall([placement_log(None)], w, placement="after") == 1.0
    # in a 20-item list the 5 seen items come 16th to 20th: none is in the top 10
    best_seen = [placement_log(0)]
    assert validation_recall(best_seen, w, placement="after", size=10) == 1.0
    assert validation_recall(best_seen, w, placement="after", size=20) == 0.0


def test_placement_is_learned_from_what_shoppers_buy_after_viewing() -> None:
    base = RankingProfile(w_repeat=1.0)
    info: dict[str, object] = {}
    buy_what_they_viewed = [placement_log(r) for r in (5, 6, 7)]
    assert with_placement(base, buy_what_they_viewed, info).seen_placement == "mixed"
    assert info["seen_placement"] == {
        "chosen": "mixed",
        "tail": 5,
        "size": 20,
        "validation_recall": {"after": 0.0, "mixed": 1.0},
    }
    buy_new_things = [placement_log(None)] * 3
    assert with_placement(base, buy_new_things, {}).seen_placement == "after"
    assert with_placement(replace(base, seen_placement="mixed"), [], {}).seen_placement == "mixed"
    assert with_placement(base, [], {}).seen_placement == "after"  # a tie keeps the profile's


def test_profile_option_parses_names_files_and_the_learned_default(tmp_path: Path) -> None:
    assert eval_ranking(None) is None
    assert eval_ranking("learned") is None
    assert eval_ranking("films") == BUILTIN_PROFILES["films"]
    path = tmp_path / "shop.json"
    path.write_bytes(
        orjson.dumps({"name": "shop", "weights": {"repeat": 7, "trend_day": 2}, "size": 12})
    )
    profile = eval_ranking(str(path))
    assert profile is not None
    assert (profile.name, profile.w_repeat, profile.w_trend_day, profile.size) == (
        "shop",
        7.0,
        2.0,
        12,
    )
    with pytest.raises(ValueError, match="neither a built-in"):
        eval_ranking(str(tmp_path / "missing.json"))
    args = build_parser().parse_args(["eval", "--dataset", "d", "--profile", str(path)])
    assert args.profile == str(path)
    assert build_parser().parse_args(["eval"]).profile is None


def test_no_dataset_name_in_the_engine_or_the_worker() -> None:
    """Behaviour must never switch on a dataset's name: the engine, pipeline and app do not
    even mention one."""
    pattern = re.compile(r"movielens|ml-?100k|complete ?journey|\bcj\b|recbole", re.IGNORECASE)
    files = [*(ROOT / "stream" / "domain").glob("*.py"), ROOT / "stream" / "pipeline.py"]
    files.append(ROOT / "stream" / "app.py")
    hits = [f"{f.name}: {m.group(0)}" for f in files for m in pattern.finditer(f.read_text())]
    assert len(files) > 5 and hits == []


def test_refining_is_kept_only_when_it_wins_on_the_validation_slice() -> None:
    """The coordinate search tunes for the fit slice; when the later slice disagrees (here a
    different signal predicts there) the likelihood weights are kept."""
    train = synthetic_logs(100, seed=3, signal=2)
    valid = synthetic_logs(100, seed=4, signal=3)
    w = np.zeros(len(SIGNALS))
    w[2] = w[3] = 1.0
    refined = refine(train, w)
    assert validation_recall(valid, refined) < validation_recall(valid, w)  # the set-up holds
    assert np.array_equal(best_on(valid, w, train), w)
    assert np.array_equal(best_on(train, w, train), refined)  # where it wins, it is used


def test_logged_lists_carry_the_signals_the_hand_profile_weighs_zero() -> None:
    """The hand profile weighs ``freshness`` 0, and ``candidate_signals`` skips a zero-weight
    signal; the lists the fit learns from must still carry it, or its weight can only be 0.
    Freshness = e^(-age / 14 d): an item first seen 14 days before the purchase scores e^-1,
    one first seen 1 day before e^(-1/14)."""
    day = 86_400_000
    t0 = 1_600_000_000_000
    catalog = Catalog()
    catalog.upsert({"item_id": "old", "ts": t0, "attributes": {"category": "c"}})
    catalog.upsert({"item_id": "new", "ts": t0 + 13 * day, "attributes": {"category": "c"}})
    hand = RankingProfile()
    assert hand.w_freshness == 0.0 and hand.freshness_tau_ms == 14 * day
    engine = Engine(catalog=catalog, relations=CoOccurrence(), ranking=hand)
    fitter = RankingFitter(warm_index=10, orders_in_range=1)
    fitter.log(5, t0 + 14 * day, engine, None, {"new"})
    (log,) = fitter.logs
    assert log.values.shape[0] == 2  # both items are candidates (popular, nothing banned)
    fresh = log.values[:, SIGNALS.index("freshness")].tolist()
    column = dict(zip(log.labels.tolist(), fresh, strict=True))
    assert column[False] == pytest.approx(np.exp(-1.0), rel=1e-6)  # "old"
    assert column[True] == pytest.approx(np.exp(-1.0 / 14), rel=1e-6)  # "new", the purchase
    assert engine.ranking is hand and hand.w_freshness == 0.0  # logging changed no profile


def test_signals_absent_from_the_fit_data_keep_the_base_weight() -> None:
    """A purchase log without searches has an all-zero ``query_match`` / ``search_filters``
    column: the fit gives them 0, which would switch searches off in a worker running the
    fitted profile. They keep the base profile's weights; an observed signal that does not
    help is still fitted to 0."""
    logs = synthetic_logs(100, seed=4, signal=4)
    absent = ("query_match", "search_filters")
    for log in logs:
        for name in absent:
            log.values[:, SIGNALS.index(name)] = 0.0
        log.values[:, 0] = 1.0 - log.labels  # observed, predicts against: fitted to 0
    fitter = RankingFitter(warm_index=100, orders_in_range=100)
    fitter.logs = logs
    base = RankingProfile()
    fitted, info = fitter.fit(base)
    assert info["outcome"] == "fitted weights used"
    assert info["kept_for_absent_signals"] == list(absent)
    assert (fitted.w_query_match, fitted.w_search_filters) == (1.0, 2.0)
    assert fitted.w_affinity * fitted.w_session == 0.0
    assert fitted.w_repeat == max(fitted.signal_weights())
