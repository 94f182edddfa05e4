"""Whether items a user already viewed (or bought) may come back, learned from the warm-up.

By default an item the user viewed (bought) is banned when the shop's customers, as learned
online, buy what they viewed (re-buy what they bought) less often than ``min_return_rate``.
That shop-wide rate mixes every casual click with the few looks that matter: in a shop where
people browse dozens of items per purchase, fewer than 5 % of viewed items are ever bought,
so every viewed item is banned - including the one in the cart, which is what the shopper
then buys (a 24 h batch that has not seen the session beat the real-time engine there).

A hard ban cannot be learned by the signal weights (banned items never reach a logged list),
so where a ban drops items the list is also logged *without* the rate bans, each candidate
marked with the ban it would have had; the fit then compares, on the validation slice,
keeping each ban (``None``: by learned rate) with lifting it (``False``), the weights
refitted for each choice. The bans are
kept on a tie, and a profile that sets ``filter_seen`` / ``filter_purchased`` keeps its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.ranking import RankingProfile
from stream.domain.signals import Returns

#: the rate bans the fit may lift: profile field -> which logged mask it bans
BANS = ("filter_seen", "filter_purchased")


@dataclass
class LowRates:
    """Per candidate of a logged list: would the rate ban of viewed / bought items drop it."""

    seen: np.ndarray | None
    bought: np.ndarray | None

    def mask(self, ban: str) -> np.ndarray | None:
        return self.seen if ban == "filter_seen" else self.bought


def relaxed(rp: RankingProfile) -> RankingProfile:
    """``rp`` without its learned-rate bans (explicit True/False settings are kept), to log
    the items those bans would drop."""
    return replace(
        rp,
        filter_seen=False if rp.filter_seen is None else rp.filter_seen,
        filter_purchased=False if rp.filter_purchased is None else rp.filter_purchased,
    )


def low_rates(
    rp: RankingProfile, returns: Returns, catalog: Catalog, cands: np.ndarray
) -> LowRates:
    """Which of ``cands`` ``banned_items`` would drop by learned rate under ``rp``."""

    def mask(rates: dict[str, float], setting: bool | None) -> np.ndarray | None:
        if setting is not None:
            return None
        floor, index = rp.min_return_rate, catalog.index
        low = {index[i] for i, r in rates.items() if r < floor and i in index}
        hit = np.isin(cands, np.fromiter(low, dtype=np.int64, count=len(low)))
        return hit if hit.any() else None

    return LowRates(mask(returns.viewed, rp.filter_seen), mask(returns.bought, rp.filter_purchased))


Fit = Callable[[RankingProfile, list[Any]], tuple[RankingProfile, dict[str, Any]]]


def fit_eligibility(
    base: RankingProfile, logs: list[Any], fit: Fit
) -> tuple[RankingProfile, dict[str, Any]]:
    """``fit(profile, logs)`` with each rate ban kept or lifted, one ban at a time (viewed,
    then bought, given the choice for viewed); the best validated result wins.

    ``logs`` carry ``low`` (``LowRates``); ``fit`` returns (profile, info) with the validation
    recall of what it returns in ``info["seen_placement"]`` (absent: nothing fitted)."""
    choice: dict[str, Any] = {}
    best = fit(base, restrict(logs, base, choice))
    tried: dict[str, float] = {"bans kept": score(best[1])}
    for ban in BANS:
        if getattr(base, ban) is not None or not _ever_bought(logs, ban):
            continue  # lifting it would only add items nobody bought
        trial = {**choice, ban: False}
        result = fit(replace(base, **trial), restrict(logs, base, trial))
        tried[f"{', '.join(sorted(trial))} lifted"] = score(result[1])
        if score(result[1]) > score(best[1]):
            best, choice = result, trial
    profile, info = best
    info["eligibility"] = {
        "lifted": sorted(choice),
        "validation_recall": {k: round(v, 4) for k, v in tried.items()},
        "min_return_rate": base.min_return_rate,
    }
    return profile, info


def _ever_bought(logs: list[Any], ban: str) -> bool:
    """Whether any logged purchase was of an item ``ban`` drops."""
    for log in logs:
        wide = log.relaxed
        mask = None if wide is None else wide.low.mask(ban)
        if mask is not None and bool((mask & wide.labels).any()):
            return True
    return False


def restrict(logs: list[Any], base: RankingProfile, lifted: dict[str, Any]) -> list[Any]:
    """The logged lists as the engine would have shown them with the bans not in ``lifted``:
    with every ban kept, the lists as logged; else each list logged without the bans
    (``relaxed``), less the items of the bans kept. (Signals are scaled per list, so a list
    restricted this way is scaled as the wider one: close to, not exactly, the engine's.)"""
    if not lifted:
        return logs
    out = []
    for log in logs:
        log = log.relaxed if log.relaxed is not None else log
        drop = np.zeros(log.labels.size, dtype=bool)
        for ban in BANS:
            mask = log.low.mask(ban)
            if mask is not None and ban not in lifted and getattr(base, ban) is None:
                drop |= mask
        keep = ~drop
        seen = None if log.seen is None else log.seen[keep]
        out.append(
            replace(log, values=log.values[keep], labels=log.labels[keep], seen=seen, relaxed=None)
        )
    return out


def score(info: dict[str, Any]) -> float:
    """Validation Recall@10 of what a fit returned (-1: nothing was fitted)."""
    placement = info.get("seen_placement")
    if not placement:
        return -1.0
    return float(placement["validation_recall"][placement["chosen"]])
