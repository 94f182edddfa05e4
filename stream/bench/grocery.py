"""What a real grocery order costs the engine: Complete Journey baskets, in process.

Why this exists: the bench's workload is synthetic (real Complete Journey products, Zipf
popularity, bursty sessions of clicks, dwell, carts and orders), and its users have short
histories. A grocery household is another shape: baskets of ~9 lines (some of 40 and more),
a purchase memory filled to its bound (300) and a query set of bought items. Every part of a
ranking that walks the user's history (the learned re-buy rates of everything they bought, the
relation rows of their latest purchases, the stored profile itself) then costs more, and the
bench's figures under-state what such a shop's orders cost. This tool replays a seeded sample
of Complete Journey households (``stream.datasets.completejourney``: their orders in time order,
with the weekly deal-flag catalog updates) through the bench's in-process runner, each order
its own burst (as a steady stream delivers them: one event, one ranking), and times every
stage of every order after the first third (which only warms the engine).

In the same run, as a baseline, the bench's quick workload in one-event bursts
(``inprocess.measure_bursts``), so the report says how many synthetic events an order costs.

Run::

    python -m stream.bench.grocery --out reports/grocery

It writes ``grocery.json`` and ``grocery.png`` there (~1 min with 80 households).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.bench.inprocess import STAGES

#: basket sizes (order lines) the report splits orders by: [low, high)
BUCKETS: tuple[tuple[int, int], ...] = ((1, 5), (5, 10), (10, 20), (20, 40), (40, 10**9))
#: the share of orders that only warm the engine (profiles with a history, learned rates)
WARM_SHARE = 1 / 3


def bucket_label(low: int, high: int) -> str:
    return f"{low}+" if high >= 10**9 else f"{low}-{high - 1}"


def summarise(rows: Sequence[dict[str, int]]) -> dict[str, Any]:
    """Per-order figures in µs: the total's mean, p50 and p99, each stage's mean, and the
    same split by basket size (``lines``)."""

    def mean_us(values: Sequence[float]) -> float:
        return round(statistics.fmean(values) / 1000.0, 1) if values else 0.0

    totals = [sum(r[s] for s in STAGES) for r in rows]
    out: dict[str, Any] = {
        "orders": len(rows),
        "lines_mean": round(statistics.fmean(r["lines"] for r in rows), 2) if rows else 0.0,
        "total_us": {
            "mean": mean_us(totals),
            "p50": round(_quantile(totals, 0.5) / 1000.0, 1),
            "p99": round(_quantile(totals, 0.99) / 1000.0, 1),
        },
        "stages_us": {s: mean_us([r[s] for r in rows]) for s in STAGES},
        "by_lines": [],
    }
    for low, high in BUCKETS:
        inside = [r for r in rows if low <= r["lines"] < high]
        if inside:
            out["by_lines"].append(
                {
                    "lines": bucket_label(low, high),
                    "orders": len(inside),
                    "total_us": mean_us([sum(r[s] for s in STAGES) for r in inside]),
                    "stages_us": {s: mean_us([r[s] for r in inside]) for s in STAGES},
                }
            )
    return out


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by the nearest rank (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def replay_orders(
    households: int, seed: int, pfeed: bool | None, progress_every: int = 1000
) -> tuple[list[dict[str, int]], dict[str, Any]]:
    """Every order of ``households`` sampled households through the in-process runner, one
    burst each; the timings of the orders after the warm share, and what the state holds."""
    from stream.adapters.gc_pauses import as_worker
    from stream.bench.inprocess import BurstRunner, build_engine, encode
    from stream.datasets.completejourney import load_completejourney
    from stream.settings import Settings

    settings = Settings()
    data = load_completejourney(max_households=households, seed=seed)
    events = list(data.events)
    n_orders = sum(1 for e in events if e["topic"] == "orders")
    runner = BurstRunner(
        build_engine(data.catalog, pfeed=settings.pfeed if pfeed is None else pfeed)
    )
    warm = int(n_orders * WARM_SHARE)
    print(
        f"[grocery] {households} households: {n_orders:,} orders, {len(events) - n_orders:,} "
        f"catalog updates; the first {warm:,} orders warm",
        flush=True,
    )
    rows: list[dict[str, int]] = []
    seen = 0
    with as_worker(settings.gc_freeze, settings.gc_gen0_threshold):  # the worker's collector
        for event, raw in zip(events, encode(events), strict=True):
            if event["topic"] != "orders":
                runner.engine.catalog.upsert({k: v for k, v in event.items() if k != "topic"})
                continue
            (timing,) = runner.run_window([[raw]])
            seen += 1
            if seen > warm:
                rows.append(timing | {"lines": len(event["items"])})
            if progress_every and seen % progress_every == 0:
                print(f"[grocery] {seen:,} / {n_orders:,} orders", flush=True)
    store = runner.store
    keys = store.keys
    sizes = [len(store.get(key) or b"") for key in keys()]
    state = {
        "users": len(sizes),
        "profile_bytes_mean": round(statistics.fmean(sizes), 1) if sizes else 0.0,
        "profile_bytes_max": max(sizes, default=0),
    }
    return rows, state


def measure(
    households: int, seed: int = 0, synthetic_events: int = 4000, pfeed: bool | None = None
) -> dict[str, Any]:
    """The grocery replay and, in the same run, the synthetic one-event bursts it is
    compared with."""
    from stream.bench.inprocess import measure_bursts
    from stream.bench.workload import WorkloadConfig, generate_events, load_catalog

    rows, state = replay_orders(households, seed, pfeed)
    result: dict[str, Any] = {"households": households, "seed": seed, **summarise(rows)}
    result["state"] = state
    print(f"[grocery] baseline: the quick workload, {synthetic_events:,} events ...", flush=True)
    cfg = WorkloadConfig(items=3000, users=2000, seed=7)
    catalog = load_catalog(cfg)
    base, _ = measure_bursts(
        catalog, list(generate_events(catalog, cfg, synthetic_events)), 1, pfeed
    )
    result["synthetic"] = {
        "bursts": base["bursts"],
        "events_per_burst": base["events_per_burst"],
        "total_us_mean": base["total_us"]["mean"],
        "stages_us": {s: base["stages_us"][s]["mean"] for s in STAGES},
    }
    synthetic = result["synthetic"]["total_us_mean"]
    result["order_vs_synthetic_burst"] = (
        round(result["total_us"]["mean"] / synthetic, 2) if synthetic > 0 else None
    )
    return result


def plot(result: dict[str, Any], path: Path) -> Path:
    """Stacked stage means: the synthetic burst, then orders by basket size."""
    from stream.bench.plots import _save, plt

    columns = [("synthetic\nburst", result["synthetic"]["stages_us"])]
    columns += [
        (f"{b['lines']} lines\n({b['orders']:,})", b["stages_us"]) for b in result["by_lines"]
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [label for label, _ in columns]
    bottom = [0.0] * len(columns)
    for stage in STAGES:
        heights = [stages[stage] / 1000.0 for _, stages in columns]
        ax.bar(labels, heights, bottom=bottom, label=stage)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("ms a burst (mean, in process)")
    ax.set_title(
        f"A Complete Journey order: {result['total_us']['mean'] / 1000:.2f} ms, "
        f"{result['order_vs_synthetic_burst']}× a synthetic burst"
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=80, help="sampled households")
    parser.add_argument("--seed", type=int, default=0, help="the household sample's seed")
    parser.add_argument("--synthetic-events", type=int, default=4000, help="baseline size")
    parser.add_argument("--out", type=Path, default=Path("reports/grocery"))
    args = parser.parse_args(argv)
    if args.households < 1 or args.synthetic_events < 2:
        parser.error("--households must be >= 1 and --synthetic-events >= 2")
    result = measure(args.households, args.seed, args.synthetic_events)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grocery.json").write_text(json.dumps(result, indent=2) + "\n")
    png = plot(result, args.out / "grocery.png")
    print(json.dumps(result, indent=2))
    print(f"[grocery] wrote {args.out / 'grocery.json'} and {png}", flush=True)


if __name__ == "__main__":
    main()
