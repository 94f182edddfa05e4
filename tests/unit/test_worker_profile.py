"""The py-spy summary: each busy sample goes to the component of its deepest known frame."""

from pathlib import Path

from stream.bench.worker_profile import component, spy_argv, summarise

LOOP = "<module> (<frozen runpy>:198)"
HANDLE = "handle_user_batch (/x/stream/pipeline.py:10)"
RANK = "rank (/x/stream/domain/ranking.py:5)"
FAUST = "on_message (/v/faust/transport/conductor.py:1)"
SEND = "send (/v/aiokafka/producer/producer.py:3)"
THREAD = "_bootstrap (threading.py:1002)"


def test_deepest_known_frame_wins() -> None:
    assert component([LOOP, FAUST, HANDLE, RANK]) == "engine"
    assert component([LOOP, FAUST, HANDLE, SEND]) == "aiokafka"
    assert component([LOOP, FAUST, HANDLE]) == "pipeline"
    assert component([LOOP, "f (/v/somewhere.py:1)"]) == "other"


def test_shares_are_of_busy_samples_split_by_thread() -> None:
    lines = [
        f"{LOOP};{FAUST};{HANDLE};{RANK} 6",
        f"{LOOP};{FAUST} 2",
        f"{LOOP};select (selectors.py:468) 50",  # waiting: not busy
        f"{THREAD};upsert (/x/stream/adapters/qdrant_edge_sink.py:9) 2",
        "garbage",
    ]
    out = summarise(lines)
    assert out["busy_samples"] == 10
    assert out["idle_samples"] == 50
    assert out["event_loop_thread"] == {"engine": 0.6, "faust": 0.2}
    assert out["other_threads"] == {"qdrant_sink": 0.2}


def test_with_threads_the_thread_decides_the_side_even_for_a_cut_stack() -> None:
    lines = [
        f"thread (7): MainThread;{LOOP};{FAUST};{HANDLE};{RANK} 6",
        f"thread (7): MainThread;{SEND} 2",  # cut short: no root frame, still the loop's
        f"thread (7): MainThread;{LOOP};select (selectors.py:468) 50",
        f"thread (9): Thread-1;{THREAD};upsert (/x/stream/adapters/qdrant_edge_sink.py:9) 2",
    ]
    out = summarise(lines)
    assert out["busy_samples"] == 10 and out["idle_samples"] == 50
    assert out["event_loop_thread"] == {"engine": 0.6, "aiokafka": 0.2}
    assert out["other_threads"] == {"qdrant_sink": 0.2}


def test_gil_mode_asks_py_spy_for_gil_holders_only() -> None:
    plain = spy_argv("py-spy", 42, Path("/t/w.raw"), 15, gil=False)
    assert plain[:4] == ["py-spy", "record", "--pid", "42"] and "--gil" not in plain
    assert "--threads" in plain  # (each stack under its thread: see the test above)
    assert spy_argv("py-spy", 42, Path("/t/w.raw"), 15, gil=True) == [*plain, "--gil"]
