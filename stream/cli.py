"""`recstream` command line. Exit code 0 on success, non-zero with a one-line reason on failure."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from stream.settings import Settings


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.broker import start_broker

    broker = start_broker(args.port)
    try:
        print(
            f"broker listening on {broker.bootstrap} (pid {broker.process.pid}); Ctrl-C stops it",
            flush=True,
        )
        return broker.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker import run_worker

    if args.web_port:
        settings = settings.with_(web_port=args.web_port)
    run_worker(settings, loglevel=args.loglevel)
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from stream.tools import replay_dataset

    stats = asyncio.run(
        replay_dataset(
            settings,
            args.dataset,
            speed=args.speed,
            rate=args.rate,
            limit=args.limit,
            max_users=args.max_users,
        )
    )
    print(stats.summary())
    return 130 if stats.interrupted else 0


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from stream.datasets import load_subset, write_dataset

    data = load_subset(args.dataset, args.max_users, args.seed)
    meta = write_dataset(
        args.out,
        data.catalog,
        data.events,
        meta={"source": args.dataset, "max_users": args.max_users, "seed": args.seed},
    )
    print(f"wrote {args.out}: {meta}")
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream.demo import run_demo

    return run_demo(settings, seconds=args.seconds, households=args.households, speed=args.speed)


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from stream.evaluation.commands import eval_ranking
    from stream.evaluation.prequential import EvalConfig, evaluate, load_for_eval
    from stream.evaluation.report import write_report
    from stream.settings import parse_weights

    command = "recstream " + " ".join(sys.argv[1:]) if sys.argv[1:] else "recstream eval"
    ranking = eval_ranking(args.profile)
    data = load_for_eval(args.dataset, args.max_users, args.seed)
    events = list(data.events)
    cfg = EvalConfig(args.dataset, args.k, args.warmup, args.seed, ranking=ranking, command=command)
    cfg.pfeed, cfg.pfeed_weights = not args.no_pfeed, parse_weights(args.pfeed_weights)
    report = evaluate(data.catalog, events, cfg)
    if args.live:
        from stream.evaluation.live import evaluate_live

        report["live"] = evaluate_live(
            settings, data.catalog, events, cfg, report, rate=args.live_rate
        )
    paths = write_report(report, Path(args.out))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    for name, segments in report["methods"].items():
        overall = segments["all"]
        print(
            f"  {name:<22} recall@{args.k} {overall[f'recall@{args.k}']:.4f}  "
            f"ndcg@{args.k} {overall[f'ndcg@{args.k}']:.4f}"
        )
    if args.live:
        print(f"  live pipeline check: {report['live']['verdict']}")
        return 0 if report["live"]["agrees"] else 1
    return 0


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from stream.bench.runner import BenchOptions, main

    sizes = tuple(int(x) for x in args.state_sizes.split(",")) if args.state_sizes else None
    return main(
        BenchOptions.build(
            args.quick,
            events=args.events,
            drain_events=args.drain_events,
            users=args.users,
            items=args.items,
            latency_seconds=args.latency_seconds,
            state_sizes=sizes,
            repeats=args.repeats,
            capacity_probes=args.capacity_probes,
            rounds=args.rounds,
            out_dir=Path(args.out),
            json_path=Path(args.json) if args.json else None,
        )
    )


def _cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from stream.provision import provision

    for line in provision(settings):
        print(line, flush=True)
    return 0


def _cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from stream.dashboards import main_render

    return main_render(args.prometheus, args.out, args.minutes)


def _cmd_fit_ranking(args: argparse.Namespace, settings: Settings) -> int:
    from stream.evaluation.commands import fit_ranking

    return fit_ranking(args.dataset, args.max_users, args.seed, args.warmup, args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recstream", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", help="run the bundled local Kafka-protocol broker (Tansu)")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(func=_cmd_broker)

    p = sub.add_parser("worker", help="run a Faust worker")
    p.add_argument("--web-port", type=int, default=0, help="Faust web port (one per worker)")
    p.add_argument("--loglevel", default="info")
    p.set_defaults(func=_cmd_worker)

    from stream.user_cli import register as register_user

    register_user(sub)

    p = sub.add_parser("replay", help="send a dataset to the input topics")
    p.add_argument("dataset", help="completejourney | movielens | a generic dataset folder")
    p.add_argument("--speed", type=float, default=None, help="time compression (3600 = 1 h/s)")
    p.add_argument("--rate", type=float, default=None, help="messages per second cap")
    p.add_argument("--limit", type=int, default=None, help="at most this many events")
    p.add_argument("--max-users", type=int, default=None, help="subset of users (adapters)")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("export", help="write a dataset in the generic folder format")
    p.add_argument("dataset", help="completejourney | movielens | a generic dataset folder")
    p.add_argument("out", help="folder to write catalog.jsonl + events.jsonl into")
    p.add_argument("--max-users", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("eval", help="prequential evaluation: real-time vs batch vs baselines")
    p.add_argument(
        "--dataset",
        default="completejourney",
        help="completejourney | movielens | a generic dataset folder",
    )
    p.add_argument("--max-users", type=int, default=None, help="seeded subset of users")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--warmup", type=float, default=0.5, help="share of events before scoring")
    p.add_argument("--out", default="reports/eval.json", help="JSON report (+ .md and plots)")
    p.add_argument(
        "--profile",
        default=None,
        help="ranking profile: a built-in name or a JSON file (default: weights fitted on the "
        "warm-up part of the data, 'learned')",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="also replay through broker + worker and score the emitted lists",
    )
    p.add_argument("--no-pfeed", action="store_true", help="co-occurrence only (no learned lookup)")
    p.add_argument("--pfeed-weights", default="0.25,1", help="blend weights lookup,co-occurrence")
    p.add_argument(
        "--live-rate",
        type=float,
        default=60.0,
        help="live replay, messages/s (paced: one list per event)",
    )
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("demo", help="broker + embedded Qdrant + worker + real data, live view")
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    p.add_argument("--households", type=int, default=200, help="completejourney households")
    p.add_argument(
        "--speed",
        type=float,
        default=86400.0,
        help="time compression of the replay (default: a day of shopping per second)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="throughput, latency, per-burst cost and state size")
    p.add_argument("--quick", action="store_true", help="smaller sizes (under ~2 minutes)")
    p.add_argument("--json", default=None, help="JSON report path (default OUT/bench.json)")
    p.add_argument("--out", default="reports/bench", help="folder for markdown + PNG plots")
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="in-process workload events (and the throughput backlog, unless --drain-events)",
    )
    p.add_argument(
        "--drain-events",
        type=int,
        default=None,
        help="throughput backlog size (full: --events; --quick: 8000)",
    )
    p.add_argument("--users", type=int, default=None, help="workload users")
    p.add_argument("--items", type=int, default=None, help="catalog products")
    p.add_argument("--latency-seconds", type=float, default=None, help="per load level")
    p.add_argument("--state-sizes", default=None, help="users in state, e.g. 10000,100000")
    p.add_argument("--repeats", type=int, default=None, help="clicks per scaling point")
    p.add_argument(
        "--capacity-probes",
        type=int,
        default=None,
        help="rates probed for one worker's steady capacity, each beyond the bound twice "
        "(full: 4, --quick: 0)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="drains of the pipeline and the naive Faust agent; medians reported (full: 3, "
        "--quick: 1)",
    )
    p.set_defaults(func=_cmd_bench)

    from stream.model_cli import register as register_model

    model = register_model(sub)
    p = model.add_parser("fit-ranking", help="fit signal weights on a dataset's warm-up part")
    p.add_argument("--dataset", default="completejourney")
    p.add_argument("--max-users", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--warmup", type=float, default=0.5, help="share of events used (the rest: never)"
    )
    p.add_argument("--out", default=None, help="write the profile body here (default: print)")
    p.set_defaults(func=_cmd_fit_ranking)

    from stream.profile_cli import register as register_profile

    register_profile(sub)

    p = sub.add_parser("init", help="create topics (final partition counts) + Qdrant collection")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("dashboards", help="Grafana dashboards without Grafana")
    dsub = p.add_subparsers(dest="action", required=True)
    r = dsub.add_parser("render", help="draw each dashboard's panels from a Prometheus into PNGs")
    r.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    r.add_argument("--out", default="deploy/grafana/png")
    r.add_argument("--minutes", type=float, default=15.0, help="time range to draw")
    r.set_defaults(func=_cmd_dashboards)
    return parser


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (systemd, Docker, supervisors) stops a command exactly like Ctrl-C does, so the
    ``finally`` blocks that stop brokers, workers and producers by PID run in both cases.

    It re-raises itself as SIGINT rather than raising here: inside ``asyncio.run`` the runner's
    own SIGINT handling cancels the main task cleanly, whereas an exception raised from this
    handler could surface anywhere in the event loop's machinery.

    A background job of a non-interactive shell (``recstream eval ... &``) starts with SIGINT
    ignored, and a re-raised SIGINT would then do nothing: there the interrupt is raised here."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "worker":  # the Faust worker installs its own graceful SIGTERM handling
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # client chatter would drown the one-line answers of the tools
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(os.environ)
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        # a stop that lands outside a command's own handling (between two phases, say) still
        # says so; the command's ``finally`` blocks have stopped what it started
        print(f"recstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one-line reason, non-zero exit
        logging.getLogger("recstream").debug("failure", exc_info=True)
        print(f"recstream {args.command}: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """The console entry point: ``main``, and a prompt exit once interrupted.

    An interrupted command has already stopped every process it started (its ``finally``
    blocks ran before ``main`` returned 130); what is left is the interpreter's teardown,
    which waits for client and library threads and took ~3 s of a 10 s stop budget on a loaded
    machine. So an interrupted command flushes its output and leaves at once."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
