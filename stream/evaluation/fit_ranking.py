"""Signal weights learned from the stream: logistic regression over the engine's own signals.

During the warm-up part of a stream the real-time engine's candidate lists are logged at each
purchase (before it is revealed) with what the user then bought; a logistic regression over
the signal rows (``stream.domain.signals.SIGNALS``) is fitted on an earlier slice of the
warm-up and checked on a later one. The scored part of a stream is never seen. The weights
become a ranking profile body; if they do not beat the hand weights on the validation slice,
the hand weights are kept (and the report says so).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stream.domain.engine import Engine
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.signals import SIGNALS, candidate_signals

#: Logging starts this far into the warm-up (read models need history to say anything) ...
FIT_FROM = 0.3
#: ... and lists logged from here on validate the fit instead of training it.
VALIDATE_FROM = 0.8
MAX_LISTS = 6000
#: Candidates kept per logged list besides the positives: the best by the current weights,
#: where a ranking decision is actually made.
HEAD = 100
L2 = 1.0
K = 10


@dataclass
class LoggedList:
    index: int
    ts: int
    values: np.ndarray
    labels: np.ndarray
    targets: int


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
        self, index: int, ts: int, engine: Engine, profile: UserProfile | None, targets: set[str]
    ) -> None:
        """Log the real-time engine's candidates for a purchase about to be revealed."""
        if index < self.start or profile is None:
            return
        self.seen += 1
        if self.seen % self.stride:
            return
        sig = candidate_signals(
            profile,
            engine.catalog,
            engine.relations,
            engine.ranking,
            float(ts),
            cfg=engine.profile_config,
            learned=engine.repeats,
        )
        if sig.cands.size == 0:
            return
        labels = np.array([engine.catalog.ids[i] in targets for i in sig.cands.tolist()])
        score = sig.values @ engine.ranking.signal_weights()
        keep = labels.copy()
        keep[np.argsort(-score, kind="stable")[:HEAD]] = True
        self.logs.append(LoggedList(index, ts, sig.values[keep], labels[keep], len(targets)))

    def fit(self, base: RankingProfile) -> tuple[RankingProfile, dict[str, Any]]:
        """Fitted profile (or ``base`` if the fit loses on validation) and what was learned."""
        train = [log for log in self.logs if log.index < self.split]
        valid = [log for log in self.logs if log.index >= self.split]
        info: dict[str, Any] = {"signals": list(SIGNALS), "lists_fit": len(train)}
        info["lists_validation"] = len(valid)
        if not train or not valid or not any(log.labels.any() for log in train):
            info["outcome"] = "not enough logged purchases: hand weights kept"
            return base, info
        x = np.vstack([log.values for log in train])
        y = np.concatenate([log.labels for log in train]).astype(np.float64)
        w = np.clip(logistic(x, y), 0.0, None)
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
            return base, info
        info["outcome"] = "fitted weights used"
        return fitted, info


def _slice(logs: list[LoggedList]) -> str:
    return f"{_iso(logs[0].ts)} .. {_iso(logs[-1].ts)}"


def logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns the signal weights
    (the intercept, irrelevant to a ranking, is fitted and dropped)."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    beta = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (p - y) + reg * beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        delta = np.linalg.solve(hess, grad)
        beta -= delta
        if float(np.abs(delta).max()) < 1e-6:
            break
    return beta[:-1]


def validation_recall(logs: list[LoggedList], weights: np.ndarray, k: int = K) -> float:
    """Mean Recall@k of re-ranking the logged candidates with ``weights``."""
    if not logs:
        return 0.0
    total = 0.0
    for log in logs:
        top = np.argsort(-(log.values @ weights), kind="stable")[:k]
        total += float(log.labels[top].sum()) / max(1, log.targets)
    return total / len(logs)


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
        fitted_on=fitted_on,
    )
