"""Signal weights learned from the stream: a logistic model over the engine's own signals.

During the warm-up part of a stream the real-time engine's candidate lists are logged at each
purchase (before it is revealed) with what the user then bought; a listwise logistic model
(conditional logit) over the signal rows (``stream.domain.signals.SIGNALS``) is fitted on an
earlier slice of the warm-up and checked on a later one. The scored part of a stream is never
seen. The weights become a ranking profile body; if they do not beat the hand weights on the
validation slice, the hand weights are kept (and the report says so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from stream.domain.engine import Engine
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.relations import RelatedItems
from stream.domain.signals import SIGNALS, candidate_signals, returns_of
from stream.evaluation.fit_eligibility import LowRates, fit_eligibility, low_rates, relaxed

#: Logging starts this far into the warm-up (read models need history to say anything) ...
FIT_FROM = 0.3
#: ... and lists logged from here on validate the fit instead of training it.
VALIDATE_FROM = 0.8
#: Every candidate of a logged list is kept (a few hundred rows), so lists are capped.
MAX_LISTS = 3000
L2 = 1.0
K = 10
#: where viewed-not-bought items may go (``RankingProfile.seen_placement``)
PLACEMENTS = ("after", "mixed")


@dataclass
class LoggedList:
    index: int
    ts: int
    values: np.ndarray
    labels: np.ndarray
    targets: int
    #: per candidate: viewed and not bought (what ``seen_placement`` moves); None = none
    seen: np.ndarray | None = None
    #: per candidate of a ``relaxed`` list: would the learned-rate bans drop it
    low: LowRates = field(default_factory=lambda: LowRates(None, None))
    #: the same purchase's list without the learned-rate bans (None: they dropped nothing)
    relaxed: LoggedList | None = None


def every_signal(ranking: RankingProfile) -> RankingProfile:
    """``ranking`` with every skipped-at-zero signal switched on, for logging only. Logged with
    the hand profile (which weighs them 0) their columns were all zero, so the fit could never
    give them a weight: ``freshness`` was fitted to 0 on a shop whose buyers want new arrivals
    12x more. The weights of the logging profile rank nothing (only the columns are kept), and
    none of these gates a candidate, so the logged candidates are unchanged."""
    # the signals ``candidate_signals`` computes only when weighed (cost skipped at zero)
    return replace(
        ranking, w_price_fit=ranking.w_price_fit or 1.0, w_freshness=ranking.w_freshness or 1.0
    )


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


class RankingFitter:
    """Logs lists during the warm-up, then fits weights (see the module docstring)."""

    def __init__(self, warm_index: int, orders_in_range: int) -> None:
        self.start = int(warm_index * FIT_FROM)
        self.split = int(warm_index * VALIDATE_FROM)
        self.stride = max(1, -(-orders_in_range // MAX_LISTS))
        self.seen = 0
        self.logs: list[LoggedList] = []

    @classmethod
    def for_events(cls, events: list[dict[str, Any]], warm_index: int) -> RankingFitter:
        """Sized from the warm-up events alone (orders counted before the scored part)."""
        start = int(warm_index * FIT_FROM)
        orders = sum(1 for m in events[start:warm_index] if m["topic"] == "orders")
        return cls(warm_index, orders)

    def log(
        self,
        index: int,
        ts: int,
        engine: Engine,
        profile: UserProfile | None,
        targets: set[str],
        relations: RelatedItems | None = None,
    ) -> None:
        """Log the real-time engine's candidates for a purchase about to be revealed (ranked
        from ``relations`` when given, else from the engine's own). Where the learned-rate bans
        drop items, the list without those bans is logged beside it (``relaxed``), each of its
        candidates marked with the ban it would have had, so the fit can judge the bans.

        A user without a profile (a first purchase) is logged with an empty one, which is what
        the engine ranks for them: where most buyers are new, their lists are most of what is
        scored, and the weights of the signals a new user has (popularity, trends) are learned
        from them."""
        if index < self.start:
            return
        self.seen += 1
        if self.seen % self.stride:
            return
        if profile is None:
            profile = UserProfile(user_id="")
        rels = relations if relations is not None else engine.relations
        log, _ = self._logged(ts, engine, profile, targets, rels, engine.ranking, index)
        loose = relaxed(engine.ranking)
        if loose != engine.ranking:
            wide, cands = self._logged(ts, engine, profile, targets, rels, loose, index)
            returns = returns_of(profile, engine.repeats, engine.catalog)
            wide.low = low_rates(engine.ranking, returns, engine.catalog, cands)
            if wide.low.seen is not None or wide.low.bought is not None:
                log.relaxed = wide
        if log.values.shape[0] or log.relaxed is not None:
            self.logs.append(log)

    @staticmethod
    def _logged(
        ts: int,
        engine: Engine,
        profile: UserProfile,
        targets: set[str],
        relations: RelatedItems,
        ranking: RankingProfile,
        index: int,
    ) -> tuple[LoggedList, np.ndarray]:
        """The candidates ``ranking`` lets through (their catalog indexes) and signals."""
        sig = candidate_signals(
            profile,
            engine.catalog,
            relations,
            every_signal(ranking),
            float(ts),
            cfg=engine.profile_config,
            learned=engine.repeats,
            trending=engine.trending,
        )
        labels = np.array([engine.catalog.ids[i] in targets for i in sig.cands.tolist()], bool)
        values = sig.values.astype(np.float32)
        seen = sig.seen.copy() if sig.seen.any() else None
        return LoggedList(index, ts, values, labels, len(targets), seen), sig.cands

    def fit(self, base: RankingProfile) -> tuple[RankingProfile, dict[str, Any]]:
        """Fitted profile (or ``base`` if the fit loses on validation) and what was learned,
        with the learned-rate bans kept or lifted as validated (``fit_eligibility``)."""
        return fit_eligibility(base, self.logs, self._fit_logs)

    def _fit_logs(
        self, base: RankingProfile, logs: list[LoggedList]
    ) -> tuple[RankingProfile, dict[str, Any]]:
        """Weights and placement fitted on ``logs`` (split into fit and validation slices)."""
        train = [log for log in logs if log.index < self.split]
        valid = [log for log in logs if log.index >= self.split]
        info: dict[str, Any] = {"signals": list(SIGNALS), "lists_fit": len(train)}
        info["lists_validation"] = len(valid)
        if not train or not valid or not any(log.labels.any() for log in train):
            info["outcome"] = "not enough logged purchases: hand weights kept"
            return base, info
        w = best_on(valid, non_negative_fit([log for log in train if log.labels.any()]), train)
        absent = unobserved(train)
        w = np.where(absent, base.signal_weights(), w)
        info["kept_for_absent_signals"] = [n for n, a in zip(SIGNALS, absent, strict=True) if a]
        fitted = with_weights(base, w, _slice(train))
        base_recall = validation_recall(valid, base.signal_weights())
        fit_recall = validation_recall(valid, fitted.signal_weights())
        info.update(
            fit_slice=_slice(train),
            validation_slice=_slice(valid),
            weights={name: round(float(v), 4) for name, v in zip(SIGNALS, w, strict=True)},
            validation_recall={"fitted": round(fit_recall, 4), "hand": round(base_recall, 4)},
        )
        if fit_recall < base_recall:
            info["outcome"] = "fitted weights lost on the validation slice: hand weights kept"
            return with_placement(base, valid, info), info
        info["outcome"] = "fitted weights used"
        return with_placement(fitted, valid, info), info


def unobserved(logs: list[LoggedList]) -> np.ndarray:
    """Per signal: zero in every logged candidate, i.e. the data never showed it (no searches
    in a purchase log, no catalog dates). The fit can only give such a signal weight 0, which
    says nothing about it, and a worker running the fitted profile would then ignore it live
    (a shopper's search would change nothing): its weight stays the base profile's instead."""
    seen = np.zeros(len(SIGNALS), dtype=bool)
    for log in logs:
        if log.values.size:
            seen |= np.abs(log.values).max(axis=0) > 0
    return ~seen


def with_placement(
    profile: RankingProfile, valid: list[LoggedList], info: dict[str, Any]
) -> RankingProfile:
    """Where items the user viewed and did not buy go, learned like the weights: each
    placement re-ranks the validation lists and the better one is kept (the profile's own on
    a tie). Whether shoppers buy what they just looked at differs by shop (a fashion shopper
    buys one of the dresses she compared; a film already rated is not rated again), and a fixed
    rule that moves viewed items behind new ones loses badly where they do."""
    w = profile.signal_weights()
    tail, size = profile.seen_tail, profile.size
    recall = {p: validation_recall(valid, w, placement=p, tail=tail, size=size) for p in PLACEMENTS}
    best = max(PLACEMENTS, key=lambda p: (recall[p], p == profile.seen_placement))
    info["seen_placement"] = {
        "chosen": best,
        "tail": profile.seen_tail,
        "size": profile.size,
        "validation_recall": {p: round(r, 4) for p, r in recall.items()},
    }
    return replace(profile, seen_placement=best)


def _slice(logs: list[LoggedList]) -> str:
    return f"{_iso(logs[0].ts)} .. {_iso(logs[-1].ts)}"


def conditional_logit(logs: list[LoggedList], l2: float = L2, steps: int = 30) -> np.ndarray:
    """Weights maximising, over logged lists, the log-probability that a softmax over each
    list's candidates picks what was bought (a listwise objective: what matters is the order
    inside a list, not a score across users). Newton's method with an L2 penalty and a
    backtracking line search (a full Newton step can overshoot on separable data)."""
    x = np.vstack([log.values for log in logs]).astype(np.float64)
    sizes = np.array([log.values.shape[0] for log in logs])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    list_of = np.repeat(np.arange(len(logs)), sizes)
    positives = np.array([float(log.labels.sum()) for log in logs])
    x_pos = np.sum([log.values[log.labels].sum(axis=0) for log in logs], axis=0)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - top[list_of])
        z = np.add.reduceat(e, starts)
        log_z = np.log(z) + top
        value = float(x_pos @ w - positives @ log_z - 0.5 * l2 * w @ w)
        return value, e / z[list_of]

    w = np.zeros(x.shape[1])
    value, p = objective(w)
    for _ in range(steps):
        mean = np.add.reduceat(p[:, None] * x, starts)  # (lists, d)
        grad = x_pos - positives @ mean - l2 * w
        weighted = (p * positives[list_of])[:, None] * x
        hess = weighted.T @ x - (mean * positives[:, None]).T @ mean + l2 * np.eye(x.shape[1])
        delta = np.linalg.solve(hess, grad)
        step = 1.0
        while step > 1e-4:
            new_value, new_p = objective(w + step * delta)
            if new_value >= value:
                break
            step /= 2
        else:
            break
        w, value, p = w + step * delta, new_value, new_p
        if float(np.abs(step * delta).max()) < 1e-6:
            break
    return w


def non_negative_fit(logs: list[LoggedList]) -> np.ndarray:
    """``conditional_logit`` with every weight >= 0 (active set: the most negative signal is
    fixed at 0 and the rest refitted), so each signal can only add to an item's score and its
    reason stays true."""
    free = np.ones(logs[0].values.shape[1], dtype=bool)
    while free.any():
        sub = [LoggedList(g.index, g.ts, g.values[:, free], g.labels, g.targets) for g in logs]
        w = np.zeros(free.size)
        w[free] = conditional_logit(sub)
        if (w >= 0).all():
            return w
        free[int(np.argmin(w))] = False
    return np.zeros(free.size)


def refine(logs: list[LoggedList], w: np.ndarray, passes: int = 2) -> np.ndarray:
    """Tune the fitted weights for what is reported, Recall@K of the top of each list, on the
    *fit* slice: coordinate ascent over multiplicative steps. The likelihood fit weighs every
    bought item, even those no ranking could place in a top ten; this puts the emphasis back
    on the head of the list."""
    best = validation_recall(logs, w)
    for _ in range(passes):
        for j in np.flatnonzero(w > 0).tolist():
            for factor in (0.25, 0.5, 0.7, 1.4, 2.0, 4.0):
                trial = w.copy()
                trial[j] *= factor
                recall = validation_recall(logs, trial)
                if recall > best + 1e-9:
                    best, w = recall, trial
    return w


def best_on(valid: list[LoggedList], w: np.ndarray, train: list[LoggedList]) -> np.ndarray:
    """The likelihood fit ``w`` or its ``refine``d version, whichever has the higher Recall@K
    on the validation slice: the coordinate search can chase noise of the fit slice (on a
    MovieLens warm-up it lowered the validation recall, 0.1826 -> 0.1814)."""
    refined = refine(train, w)
    return refined if validation_recall(valid, refined) >= validation_recall(valid, w) else w


def validation_recall(
    logs: list[LoggedList],
    weights: np.ndarray,
    k: int = K,
    placement: str = "mixed",
    tail: int = 5,
    size: int = K,
) -> float:
    """Mean Recall@k of re-ranking the logged candidates with ``weights``; with placement
    "after", at most ``tail`` seen items follow the unseen ones at the end of a list of
    ``size`` items, as ``ScoredSet.select`` does (so with lists longer than k they may not
    reach the top k at all)."""
    if not logs:
        return 0.0
    total = 0.0
    for log in logs:
        score = log.values @ weights
        seen = log.seen if placement == "after" else None
        top = _top(score, k) if seen is None else _top_seen_after(score, seen, size, tail)[:k]
        total += float(log.labels[top].sum()) / max(1, log.targets)
    return total / len(logs)


def _top(score: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(-score, k)[:k] if score.size > k else np.arange(score.size)


def _top_seen_after(score: np.ndarray, seen: np.ndarray, k: int, tail: int) -> np.ndarray:
    unseen, viewed = np.flatnonzero(~seen), np.flatnonzero(seen)
    first = unseen[_ranked(score[unseen], max(0, k - min(viewed.size, tail)))]
    rest = viewed[_ranked(score[viewed], k - first.size)]
    return np.concatenate([first, rest])


def _ranked(score: np.ndarray, k: int) -> np.ndarray:
    """The k best, best first (order matters once a list is cut to its top k)."""
    top = _top(score, k)
    return top[np.argsort(-score[top], kind="stable")]


def with_weights(base: RankingProfile, w: np.ndarray, fitted_on: str) -> RankingProfile:
    """A profile with the fitted weights, in ``SIGNALS`` order (affinity split by horizon)."""
    return replace(
        base,
        name="learned",
        w_affinity=1.0,
        w_session=round(float(w[0]), 4),
        w_long_term=round(float(w[1]), 4),
        w_relation=round(float(w[2]), 4),
        w_popularity=round(float(w[3]), 4),
        w_repeat=round(float(w[4]), 4),
        w_view_return=round(float(w[5]), 4),
        w_trend_day=round(float(w[6]), 4),
        w_trend_week=round(float(w[7]), 4),
        w_relation_long=round(float(w[8]), 4),
        w_query_match=round(float(w[9]), 4),
        w_price_fit=round(float(w[10]), 4),
        w_freshness=round(float(w[11]), 4),
        w_relation_recent=round(float(w[12]), 4),
        w_search_filters=round(float(w[13]), 4),
        fitted_on=fitted_on,
    )


def fit_on_warmup(
    catalog: Iterable[dict[str, Any]],
    events: list[dict[str, Any]],
    warmup: float = 0.5,
    base: RankingProfile | None = None,
    progress: bool = True,
) -> tuple[RankingProfile, dict[str, Any]]:
    """`recstream model fit-ranking`: walk the warm-up part of a stream through the real-time
    engine exactly as `eval` does (``EngineMethod``), log, fit. Never reads past the warm-up."""
    from stream.evaluation.methods import EngineMethod
    from stream.evaluation.screen import screen

    events = screen(events).events  # what a worker would dead-letter, eval sets aside too
    base = base or RankingProfile()
    method = EngineMethod("engine_realtime", base)
    for message in catalog:
        method.observe({**message, "topic": "catalog"})
    warm_index = int(len(events) * warmup)
    fitter = RankingFitter.for_events(events, warm_index)
    bar = tqdm(events[:warm_index], desc="fit-ranking", unit="ev", disable=not progress)
    for index, message in enumerate(bar):
        if message["topic"] == "orders":
            targets = {str(line["item_id"]) for line in message["items"]}
            user = message["user_id"]
            fitter.log(index, int(message["ts"]), method.engine, method.profiles.get(user), targets)
        method.observe(message)
    return fitter.fit(base)
