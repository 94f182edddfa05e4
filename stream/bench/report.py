"""A bench run as JSON (what other tools read), a markdown summary and PNG plots.

JSON keys other tools rely on: ``pipeline_eps``, ``two_workers_eps``, ``noop_faust_eps``,
``naive_faust_eps``, ``bare_consumer_eps``, ``two_workers_all_busy_eps`` (the two workers while
both drained, None without such a window), ``latency_ms.{p50,p95,p99}`` (pipeline, 50 % load),
``floor_latency_ms`` and ``latency_over_floor_ms`` (same load), ``faust_floor_latency_ms`` (the
worker's Kafka path with no engine, same load), ``ratios``, ``steady_capacity_eps`` (full runs:
the fastest paced load one worker answered within the p99 bound); the rest (per-load
tables, stages, scaling, state) is described in the markdown. With several rounds (full runs)
``pipeline_eps`` and ``naive_faust_eps`` are the medians of the rounds' drains, each round's pair
in ``throughput_rounds``; ``throughput_runs`` holds round 1's drains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from stream.bench import plots

NOISE_NOTE = (
    "Measured on a shared 2-core machine while other jobs ran: figures are noisy "
    "(expect ±20 % or more between runs); compare ratios from the same run."
)


def headline_latency(latency: dict[str, Any], name: str = "pipeline") -> dict[str, Any]:
    """The 50 %-load row of a latency table (what ``latency_ms`` holds)."""
    row = next((r for r in latency.get(name, []) if r["load"] == 0.5), None)
    if row is None or not row.get("events"):
        return {}
    return {k: row[k] for k in ("p50", "p95", "p99", "max")} | {"load": 0.5}


_WORKER_COLUMNS = ("worker_mean_ms", "worker_delivery_ms", "worker_mean_batch")
_CPU_COLUMNS = (
    "sut_cpu_ms_per_event", "broker_cores", "machine_busy", "qdrant_cpu_share", "machine_stolen",
)  # fmt: skip


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _throughput_md(r: dict[str, Any]) -> list[str]:
    lines = ["## Sustained throughput (pre-filled backlog, first → last event)", ""]
    head = ["run", "events/s", "events", "seconds", "ready after s", "CPU cores", "load avg"]
    head += ["stolen by the host", "events per worker", "lists an event"]
    lines += [_row(head), _row(["---"] * len(head))]
    for name, run in r["throughput_runs"].items():
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in run["cpu_cores"].items()) or "-"
        # how the backlog fell to the workers: users are keyed to partitions, so a skewed
        # share is the workload's, and caps what a second worker can add
        split = run.get("per_worker") or []
        shares = " / ".join(f"{n:,}" for n in split) if len(split) > 1 else "-"
        lines.append(
            _row(
                [
                    name,
                    f"{run['eps']:,.0f}",
                    run["events"],
                    run["seconds"],
                    run["startup_s"],
                    cpu,
                    run.get("loadavg", "-"),
                    run.get("stolen", "-"),
                    shares,
                    run.get("lists_per_event", "-"),
                ]
            )
        )
    if any("lists_per_event" in run for run in r["throughput_runs"].values()):
        lines += [
            "",
            "`lists an event`: lists the pipeline's workers emitted over the drain, per event. "
            "A batch gives each of its users one list, answering their newest event, so a "
            "drained event's rate includes that share of a ranking; a steady stream ranks "
            "nearly every event (the steady capacity, when measured, is that rate).",
        ]
    bare = r["throughput_runs"].get("bare_consumer", {})
    if bare and bare.get("seconds", 1.0) < 0.1:
        lines += [
            "",
            f"The bare consumer read the whole backlog in {bare['seconds']} s (a few fetches): "
            'its figure says "orders of magnitude above the rest", not more; use a larger '
            "`--events` for a steadier value.",
        ]
    lines += ["", *_all_busy_md(r), *_rounds_md(r)]
    lines += [
        "",
        "Ratios (same run): " + ", ".join(f"{k} **{v:.3g}×**" for k, v in r["ratios"].items()),
        "",
    ]
    return lines


def _rounds_md(r: dict[str, Any]) -> list[str]:
    """Each round's pipeline and naive Faust drains (``throughput.run_throughput``)."""
    rounds = r.get("throughput_rounds") or []
    if len(rounds) < 2:
        return []
    lines = [
        "",
        f"The pipeline and the naive Faust agent drained the backlog in {len(rounds)} rounds "
        "(round 1 is the table above; later rounds alternate which goes first). "
        f"`pipeline_eps` ({r['pipeline_eps']:,.0f}) and `naive_faust_eps` "
        f"({r['naive_faust_eps']:,.0f}) are the medians, and the ratios use them.",
        "",
        _row(["round", "pipeline events/s", "naive Faust events/s", "ratio", "stolen by the host"]),
        _row(["---"] * 5),
    ]
    for n, one in enumerate(rounds, 1):
        stolen = " / ".join("-" if s is None else str(s) for s in one["stolen"])
        cells = [n, f"{one['pipeline_eps']:,.0f}", f"{one['naive_faust_eps']:,.0f}"]
        lines.append(_row([*cells, f"{one['ratio']:.2f}×", stolen]))
    return lines


def _all_busy_md(r: dict[str, Any]) -> list[str]:
    """The two workers' rate while both drained (``throughput.all_busy``), or why there is none."""
    busy = r["throughput_runs"].get("two_workers", {}).get("all_busy")
    if not busy:
        return []
    skew = busy["start_skew_s"]
    if busy["eps"] is None:
        return [
            f"Two workers: no window in which both drained long enough to rate (their first "
            f"events {skew} s apart): the first-to-last figure times them partly one after "
            "the other; a larger `--drain-events` gives one."
        ]
    one = r.get("pipeline_eps") or 0
    ratio = f" = **{busy['eps'] / one:.2f}×** one worker" if one else ""
    return [
        f"Two workers while both drained: **{busy['eps']:,.0f} events/s** over "
        f"{busy['seconds']} s{ratio}; their first events {skew} s apart (each worker's join "
        "is answered on its own, and first → last counts that gap)."
    ]


def _latency_md(r: dict[str, Any]) -> list[str]:
    lines = ["## End-to-end latency (event produced → list consumed by a separate process)", ""]
    keys = ("p50", "p95", "p99", "max", "events", "unanswered", *_WORKER_COLUMNS, *_CPU_COLUMNS)
    head = ["what", "load", "events/s", "p50 ms", "p95", "p99", "max", "n", "unanswered"]
    head += ["worker mean ms", "of which delivery", "mean batch", "CPU ms/event", "broker cores"]
    head += ["machine busy", "Qdrant share of CPU", "stolen by the host"]
    lines += [_row(head), _row(["---"] * len(head))]
    warm = r["latency"].get("warmup") or {}
    for name in ("pipeline", "floor", "faust_floor"):
        for row in r["latency"].get(name, []):
            values = [row.get(k, "-") for k in keys]
            lines.append(_row([name, f"{int(row['load'] * 100)} %", row["rate_eps"], *values]))
        if name in warm:  # start-up, apart from the loads (see stream.bench.latency)
            values = [warm[name].get(k, "-") for k in keys]
            lines.append(_row([name, "warm-up", warm[name]["rate_eps"], *values]))
    over = r.get("latency_over_floor_ms") or {}
    if over:
        lines += [
            "",
            "Pipeline minus floor at 50 % load: "
            + ", ".join(f"{q} **{v:+.1f} ms**" for q, v in over.items()),
        ]
    faust, floor = r.get("faust_floor_latency_ms") or {}, r.get("floor_latency_ms") or {}
    if faust and floor:
        lines += [
            "",
            "Worker path floor (`faust_floor`) minus floor at 50 % load (what the worker's "
            "Kafka path adds before any ranking): "
            + ", ".join(
                f"{q} **{faust[q] - floor[q]:+.1f} ms**"
                for q in ("p50", "p95", "p99")
                if q in faust and q in floor
            ),
        ]
    lines += [
        "",
        "`floor` = bare relay (consume → produce) on the same broker, same rates. "
        "`faust_floor` (named when that path was a Faust agent) = the worker's Kafka path with "
        "no engine (`stream.bench.faust_relay`: the worker's user reader, by default its bare "
        "consumer group, inside a Faust app configured like the worker, and its output "
        "producer, one answer an event), same rates: the floor of a worker of this design; "
        "its CPU per event is what that path costs at the rate. "
        "`worker mean ms` / `mean batch`: the worker's own /metrics over the level (broker "
        "receive → emit; events per batch), a cross-check of the probe's figures; `of which "
        "delivery`: broker receive → handed to the pipeline (fetch, hand-over, waiting behind "
        "earlier batches), the rest is the worker's own work. `CPU ms/event`: CPU time of "
        "the worker (or relay) over the level, per event sent; `broker cores`: the broker's "
        "CPU over the level, in cores; `machine busy`: all of the machine's cores over the "
        "level (0-1), which the worker, broker, load generator and probe share: near 1, the "
        "level's latency is the machine's as much as the worker's. `Qdrant share of CPU`: "
        "the worker's CPU spent on its Qdrant serving copy (points built on the event loop, "
        "sink calls in the writer's thread; `recstream_qdrant_cpu_seconds`) over all of it. "
        "`stolen by the host`: the share of all cores the VM's host took over the level "
        "(`/proc/stat` steal). The pipeline, the floor and the Faust floor each run on a "
        "broker of their own (the bundled broker slows down as it stores more). "
        "`warm-up`: a short level at the lowest rate, run first, once the fresh worker's "
        f"start-up backlog was processed ({warm.get('backlog_drained_s', '-')} s after ready).",
        "",
    ]
    return lines


def _capacity_md(r: dict[str, Any]) -> list[str]:
    c = r.get("latency", {}).get("capacity")
    if not c:
        return []
    bound = c["p99_bound_ms"]
    found = (
        f"**{c['eps']:,.0f} events/s** ({c['share_of_drained'] * 100:.0f} % of the drained rate, "
        f"{c['drained_eps']:,.0f})"
        if c["eps"]
        else "no probe within the bound"
    )
    lines = [f"## Steady capacity of one worker (p99 ≤ {bound:.0f} ms)", ""]
    lines += [
        f"{found}; the slowest load beyond the bound: {c['first_beyond_eps']:,.0f} events/s. "
        "The latency levels above were the first points of the search; then paced probes "
        '(`stream.bench.capacity`; a probe beyond the bound is run again, "again", and its '
        "rate counts as beyond only if both are):",
        "",
        _row(["events/s", "p50 ms", "p99 ms", "unanswered", "mean batch", "CPU ms/event"]),
        _row(["---"] * 6),
    ]
    keys = ("p50", "p99", "unanswered", "worker_mean_batch", "sut_cpu_ms_per_event")
    lines += [_row([_probe_rate(p), *(p.get(k, "-") for k in keys)]) for p in c["probes"]]
    return [*lines, ""]


def _probe_rate(probe: dict[str, Any]) -> Any:
    """A probe's rate; "(again)" when it re-ran a rate whose first probe was beyond the bound."""
    return f"{probe['rate_eps']} (again)" if probe.get("confirms") else probe["rate_eps"]


def _burst_md(r: dict[str, Any]) -> list[str]:
    b = r["burst"]
    lines = ["## In-worker time per user burst (in-process, in-memory state)", ""]
    lines += [
        f"{b['bursts']} bursts, {b['events']} events ({b['events_per_burst']} per burst, "
        f"windows of {b['batch_max']}): total p50 **{b['total_us']['p50']} µs**, p99 "
        f"**{b['total_us']['p99']} µs**, {b['per_event_us']} µs per event.",
        "",
        _row(["stage", "p50 µs", "p99 µs", "mean µs"]),
        _row(["---"] * 4),
    ]
    for stage, q in b["stages_us"].items():
        lines.append(_row([f"{stage} (cold)" if stage == "rank" else stage, *_q(q)]))
    lines.append(_row(["(rank again, warm)", *_q(b.get("rank_warm_us"))]))
    lines += [_row(["(rank without reasons, warm)", *_q(b["rank_without_reasons_us"])]), ""]
    steady = b.get("steady")
    if steady:  # (reports written before it have none)
        lines += [
            f"A steady stream's batches (windows of {steady['window']} events, "
            f"{steady['events_per_burst']} events a burst, {steady['events']:,} fresh events on "
            f"the same warm engine): **{steady['cpu_us_per_event']} µs of CPU an event** "
            f"({steady['cpu_us_per_burst']} µs a burst). The table is a drain's: its windows "
            "coalesce a user's session into one ranking, a steady stream ranks nearly every "
            "event.",
            "",
        ]
    split = b.get("rank_split_us")
    if split:  # (reports written before the warm probe have no split)
        lines += [
            "Rows in brackets are not in the total: the burst's ranking timed again right after "
            "the cold one, with and without reasons. Refresh of the shared read models after "
            f"the burst's writes (cold − warm, mean): **{split['refresh']} µs**; reasons (warm "
            f"− warm without reasons, mean): **{split['reasons']} µs**.",
            "",
        ]
    return lines


def _q(q: dict[str, float] | None) -> list[Any]:
    return [q["p50"], q["p99"], q["mean"]] if q else ["-"] * 3


def _hotspots_md(r: dict[str, Any]) -> list[str]:
    h = r["hotspots"]
    lines = [f"## Hot spots (cProfile over {h['bursts']} bursts, self time; shares only)", ""]
    lines += [_row(["function", "self share", "cumulative share", "calls/burst"])]
    lines += [_row(["---"] * 4)]
    for f in h["functions"]:
        lines.append(
            _row(
                [
                    f"`{f['function']}`",
                    f"{f['self_share']:.1%}",
                    f"{f['cumulative_share']:.1%}",
                    f["calls_per_burst"],
                ]
            )
        )
    return [*lines, ""]


def _scaling_md(r: dict[str, Any]) -> list[str]:
    s = r["scaling"]
    lines = [f"## Per-event cost vs candidates and query set ({s['repeats']} clicks per point)", ""]
    lines += [_row(["candidates", "scored", "p50 µs", "p99 µs"]), _row(["---"] * 4)]
    lines += [
        _row([x["candidates"], x.get("scored", "?"), x["p50"], x["p99"]]) for x in s["candidates"]
    ]
    lines += ["", _row(["query items", "p50 µs", "p99 µs"]), _row(["---"] * 3)]
    lines += [_row([x["query_items"], x["p50"], x["p99"]]) for x in s["queries"]]
    return [*lines, ""]


def _state_md(r: dict[str, Any]) -> list[str]:
    st = r["state"]
    b = st["bytes_per_user"]
    lines = ["## State per user", ""]
    lines += [
        f"Serialized profile after the workload ({b['users']} users): mean {b['mean']} B, "
        f"p50 {b['p50']} B, p95 {b['p95']} B, max {b['max']} B; a heavy user with every "
        f"default bound filled: **{st['heavy_profile_bytes']} B**.",
        "",
        _row(
            [
                "users", "RSS MB before", "after fill", "after serving", "disk MB", "fill s",
                "stock index rebuild s", "µs/user", "longest loop block ms",
                "full decode µs/user (before)",
            ]
        ),
        _row(["---"] * 10),
    ]  # fmt: skip
    for x in st["rss"]:
        lines.append(
            _row(
                [
                    f"{x['users']:,}",
                    x["rss_mb_before_fill"],
                    x["rss_mb_after_fill"],
                    x["rss_mb_after_serving"],
                    x["disk_mb"],
                    x["fill_s"],
                    x.get("index_rebuild_s", "-"),
                    x.get("index_rebuild_us_per_user", "-"),
                    x.get("index_max_loop_block_ms", "-"),
                    x.get("full_decode_us_per_user", "-"),
                ]
            )
        )
    return [*lines, ""]


def markdown(r: dict[str, Any], pngs: list[Path]) -> str:
    h = r["header"]
    lines = [
        "# recstream bench",
        "",
        f"`{h['command']}` · commit `{h['commit']}`{' (dirty)' if h['dirty'] else ''} · "
        f"{h['started_at']} · {h['duration_s']:.0f} s · {h['machine'].get('cpus')} CPUs "
        f"({h['machine'].get('cpu_model', '?')}), load average at start "
        f"{h['machine'].get('loadavg_at_start')}",
        "",
        f"> {NOISE_NOTE}",
        "",
        f"Workload: {r['workload']['description']}",
        "",
    ]
    for section, render in (
        ("pipeline_eps", _throughput_md),
        ("latency", _latency_md),
        ("latency", _capacity_md),
        ("burst", _burst_md),
        ("hotspots", _hotspots_md),
        ("scaling", _scaling_md),
        ("state", _state_md),
    ):
        if section in r:
            lines += render(r)
    lines += [f"![{p.stem}]({p.name})" for p in pngs]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, json_path: Path | None) -> list[Path]:
    """bench.json (or ``json_path``), bench.md and the PNGs in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = json_path or out_dir / "bench.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    pngs = plots.write_all(report, out_dir)
    md = out_dir / "bench.md"
    md.write_text(markdown(report, pngs))
    return [json_path, md, *pngs]
