"""`recstream profile compare`: parse /metrics text, sum workers, compute the comparison."""

from __future__ import annotations

from prometheus_client import generate_latest

from stream.adapters.metrics import Metrics
from stream.profile_compare import comparisons, parse_samples, render, variant_hit_rates


def worker_text(overlaps: list[float], corrs: list[float], hits: tuple[int, int]) -> str:
    """One worker's exposition after some shadow comparisons, as the real Metrics writes it."""
    m = Metrics()
    labels = ("default@2", "cand@1", "for_you")
    for overlap, corr in zip(overlaps, corrs, strict=True):
        m.shadow_lists.labels(*labels).inc()
        m.shadow_overlap.labels(*labels).observe(overlap)
        m.shadow_correlation.labels(*labels).observe(corr)
    m.shadow_opportunities.labels("default@2", "cand@1").inc(4)
    m.shadow_hits.labels("default@2", "cand@1", "active").inc(hits[0])
    m.shadow_hits.labels("default@2", "cand@1", "shadow").inc(hits[1])
    m.variant_opportunities.labels("default@2", "B").inc(4)
    m.variant_hits.labels("default@2", "B").inc(1)
    return generate_latest(m.registry).decode()


def test_two_workers_add_up_to_one_comparison() -> None:
    samples_a = parse_samples(worker_text([0.2, 0.4], [-0.5, 0.1], (1, 2)))
    samples_b = parse_samples(worker_text([0.6], [0.7], (0, 1)))
    total = {k: samples_a.get(k, 0.0) + samples_b.get(k, 0.0) for k in {*samples_a, *samples_b}}
    (comp,) = comparisons(total)
    assert (comp.active, comp.shadow) == ("default@2", "cand@1")
    feed = comp.feeds["for_you"]
    assert feed.lists == 3
    assert abs((feed.overlap or 0) - 0.4) < 1e-9  # (0.2 + 0.4 + 0.6) / 3
    assert abs((feed.correlation or 0) - 0.1) < 1e-9  # (-0.5 + 0.1 + 0.7) / 3: negatives kept
    assert comp.next_events == 8
    assert comp.hit_rate("active") == 1 / 8 and comp.hit_rate("shadow") == 3 / 8
    assert variant_hit_rates(total) == [("default@2", "B", 8.0, 2.0)]
    text = render(total)
    assert "live default@2  vs  shadow cand@1" in text and "0.400" in text and "0.375" in text


def test_render_without_a_shadow_says_so() -> None:
    assert "no shadow comparison yet" in render(
        parse_samples(generate_latest(Metrics().registry).decode())
    )
