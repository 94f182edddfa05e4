"""`recstream profile compare`: the live ranking against its shadow, from the workers' /metrics.

Why /metrics and not the two topics: the workers already compare each shadow list with the live
list of the same user and trigger as they rank them (overlap@10, rank correlation) and see the
user's next interaction at once (hit rate), so the comparison is exactly what ran; counters and
histogram sums add up across workers (pass every worker's URL); and reading
`recommendations` + `recommendations-shadow` + every user topic from the beginning would cost a
full replay of growing topics for each look. The price: the counters start at zero with each
worker process, so the comparison covers the workers' current lifetimes.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
#: (metric name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    """Prometheus text exposition → samples (comments and _created series skipped)."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        match = _SAMPLE.match(head)
        if match is None or match["name"].endswith("_created"):
            continue
        labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
        out[(match["name"], labels)] = float(value)
    return out


def fetch_samples(urls: Iterable[str], timeout: float = 5.0) -> Samples:
    """Every worker's samples, summed (counters and histogram sums/counts add up)."""
    total: Samples = defaultdict(float)
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for key, value in parse_samples(response.read().decode()).items():
                total[key] += value
    return dict(total)


@dataclass
class FeedComparison:
    lists: float = 0.0
    overlap_sum: float = 0.0
    correlation_sum: float = 0.0

    @property
    def overlap(self) -> float | None:
        return self.overlap_sum / self.lists if self.lists else None

    @property
    def correlation(self) -> float | None:
        return self.correlation_sum / self.lists if self.lists else None


@dataclass
class Comparison:
    """One live profile against one shadow, as the workers measured them."""

    active: str
    shadow: str
    feeds: dict[str, FeedComparison] = field(default_factory=dict)
    next_events: float = 0.0
    hits: dict[str, float] = field(default_factory=lambda: {"active": 0.0, "shadow": 0.0})

    def hit_rate(self, ranking: str) -> float | None:
        return self.hits[ranking] / self.next_events if self.next_events else None


def _labels(key: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    return dict(key)


def comparisons(samples: Samples) -> list[Comparison]:
    """Group the shadow metrics by (live, shadow) pair."""
    found: dict[tuple[str, str], Comparison] = {}

    def of(labels: Mapping[str, str]) -> Comparison:
        pair = (labels.get("active", "?"), labels.get("shadow", "?"))
        return found.setdefault(pair, Comparison(*pair))

    for (name, key), value in samples.items():
        labels = _labels(key)
        feed = labels.get("feed", "")
        if name == "recstream_shadow_lists_total":
            of(labels).feeds.setdefault(feed, FeedComparison()).lists += value
        elif name == "recstream_shadow_overlap_at_10_sum":
            of(labels).feeds.setdefault(feed, FeedComparison()).overlap_sum += value
        elif name == "recstream_shadow_rank_correlation_sum":
            of(labels).feeds.setdefault(feed, FeedComparison()).correlation_sum += value
        elif name == "recstream_shadow_next_events_total":
            of(labels).next_events += value
        elif name == "recstream_shadow_next_event_hits_total":
            of(labels).hits[labels.get("ranking", "active")] += value
    return sorted(found.values(), key=lambda c: (c.active, c.shadow))


def variant_hit_rates(samples: Samples) -> list[tuple[str, str, float, float]]:
    """(profile, variant, next interactions, hits) of every live variant seen."""
    rows: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (name, key), value in samples.items():
        labels = _labels(key)
        pair = (labels.get("profile", "?"), labels.get("variant", "?"))
        if name == "recstream_variant_next_events_total":
            rows[pair][0] += value
        elif name == "recstream_variant_next_event_hits_total":
            rows[pair][1] += value
    return [(p, v, n, h) for (p, v), (n, h) in sorted(rows.items())]


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "—" if value is None else pattern.format(value)


def render(samples: Samples) -> str:
    """The human-readable report printed by the command."""
    lines: list[str] = []
    for comp in comparisons(samples):
        lines.append(f"live {comp.active}  vs  shadow {comp.shadow}")
        lines.append(f"  {'feed':<14}{'lists':>8}{'overlap@10':>12}{'rank corr':>11}")
        for feed, fc in sorted(comp.feeds.items()):
            lines.append(
                f"  {feed:<14}{fc.lists:>8.0f}{_fmt(fc.overlap):>12}{_fmt(fc.correlation):>11}"
            )
        lines.append(
            f"  next interactions after both lists: {comp.next_events:.0f}; top-10 hit rate "
            f"live {_fmt(comp.hit_rate('active'))}, shadow {_fmt(comp.hit_rate('shadow'))}"
        )
    if not lines:
        lines.append('no shadow comparison yet (publish a body with "shadow": true)')
    variants = variant_hit_rates(samples)
    if variants:
        lines.append("live variants (next interaction in the top 10 of the list shown):")
        for profile, variant, n, h in variants:
            rate = _fmt(h / n if n else None)
            lines.append(f"  {profile:<24} {variant:<8} {n:>8.0f} interactions  hit rate {rate}")
    return "\n".join(lines)
