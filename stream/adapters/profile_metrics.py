"""Metrics of ranking profiles: updates from the topic, A/B variants and shadow comparison.

A mixin of ``Metrics`` (stream/adapters/metrics.py), which calls ``_declare_profiles`` with the
others, so every metric is still an attribute of the one Metrics object (the README check sees
them); kept here so the profile runtime's metrics read as one concept.

Labels are bounded: ``profile``/``active``/``shadow`` are ``name@version`` labels (a handful
per process lifetime), ``variant`` the few variant names a body declares, ``outcome`` one of
``OUTCOMES``. Never a user or item id.

The hit counters answer "did the user's next interaction touch the top 10 of the list they were
last shown?" — per live variant (for A/B tests), and for a shadow, for both rankings of the
same users at the same moments (``recstream profile compare`` divides them).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

#: What a `ranking-profiles` record did (see ``stream.domain.profile_registry.Update``).
OUTCOMES = ("activated", "shadowed", "retracted", "unchanged", "stale", "ignored", "rejected")
_UNIT_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class ProfileMetrics:
    registry: CollectorRegistry

    def _declare_profiles(self) -> None:
        r = self.registry
        self.updates = Counter(
            "recstream_ranking_profile_updates",
            "ranking-profiles records applied by this worker's follower, by outcome (rejected = "
            "invalid body: logged here, dead-lettered once by the group consumer)",
            ["outcome"],
            registry=r,
        )
        for outcome in OUTCOMES:  # zero, not absent
            self.updates.labels(outcome)
        self.swap_lag = Gauge(
            "recstream_ranking_profile_swap_lag_seconds",
            "Publication (record timestamp) to live in this worker, of the last body that changed "
            "the live or shadow profile while the worker was running (not during its start replay)",
            registry=r,
        )
        self.variant_share = Gauge(
            "recstream_ranking_variant_share",
            "Traffic share of each variant of the live profile (name@version)",
            ["profile", "variant"],
            registry=r,
        )
        self.shadow_info = Gauge(
            "recstream_ranking_shadow_info",
            "Shadow profile scored next to the live one (value 1; absent without a shadow)",
            ["active", "shadow"],
            registry=r,
        )
        self.variant_opportunities = Counter(
            "recstream_variant_next_events",
            "User interactions with an item that followed a list of this profile and variant",
            ["profile", "variant"],
            registry=r,
        )
        self.variant_hits = Counter(
            "recstream_variant_next_event_hits",
            "Of those, interactions with an item in the top 10 of that list",
            ["profile", "variant"],
            registry=r,
        )
        self.shadow_lists = Counter(
            "recstream_shadow_lists",
            "Shadow lists scored and emitted to recommendations-shadow, by feed",
            ["active", "shadow", "feed"],
            registry=r,
        )
        self.shadow_overlap = Histogram(
            "recstream_shadow_overlap_at_10",
            "Overlap@10 of the shadow list with the live list of the same user and trigger",
            ["active", "shadow", "feed"],
            buckets=_UNIT_BUCKETS,
            registry=r,
        )
        # a summary (count + sum: the mean), not a histogram: prometheus_client drops the
        # _sum of histograms that can observe negative values, and correlations can be < 0
        self.shadow_correlation = Summary(
            "recstream_shadow_rank_correlation",
            "Spearman correlation of the top 10s (missing items at rank 11), shadow vs live",
            ["active", "shadow", "feed"],
            registry=r,
        )
        self.shadow_opportunities = Counter(
            "recstream_shadow_next_events",
            "User interactions with an item that followed both a live and a shadow for_you list",
            ["active", "shadow"],
            registry=r,
        )
        self.shadow_hits = Counter(
            "recstream_shadow_next_event_hits",
            "Of those, interactions with an item in the top 10 of the live or the shadow list",
            ["active", "shadow", "ranking"],
            registry=r,
        )
