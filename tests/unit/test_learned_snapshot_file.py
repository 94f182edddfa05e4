"""The snapshot file (``stream.adapters.learned_snapshots``): written atomically, read back
whole, and refused — never half-used — when it is unreadable or of another deployment."""

from __future__ import annotations

from pathlib import Path

from stream.adapters.learned_snapshots import Applied, LearnedSnapshots
from stream.domain.learned_snapshot import capture, restore
from stream.settings import Settings
from tests.unit.fast_rank_workload import feed_lists, learned_shop
from tests.unit.test_learned_snapshot import by_id, replica


def test_written_file_restores_the_same_models_and_positions(tmp_path: Path) -> None:
    shop = learned_shop(n_events=600)
    live = replica()
    for obs in shop.observations:
        live.learner.remote(obs)
    files = LearnedSnapshots(Settings(topic_prefix="a-"), tmp_path)
    applied = {0: Applied(41, 1_700_000_000_000, b"clicks:0"), 3: Applied(7, 5, None)}
    files.save(live.learner, applied)
    assert files.path.exists() and not files.path.with_suffix(".tmp").exists()
    assert files.written == 1 and files.written_at > 0
    loaded = files.load()
    assert loaded is not None
    assert loaded.positions == {p: a.to_json() for p, a in applied.items()}
    restarted = replica()
    restore(restarted.learner, loaded.meta, loaded.arrays)
    assert by_id(restarted) == by_id(live)
    assert feed_lists(restarted, shop) == feed_lists(live, shop)


def test_unreadable_or_foreign_snapshots_are_not_used(tmp_path: Path) -> None:
    files = LearnedSnapshots(Settings(topic_prefix="a-"), tmp_path)
    assert files.load() is None  # none yet
    files.path.write_bytes(b"PK\x03\x04 not really a zip")
    assert files.load() is None
    files.path.write_bytes(b"")
    assert files.load() is None
    LearnedSnapshots(Settings(topic_prefix="b-"), tmp_path).save(replica().learner, {})
    assert files.load() is None  # another deployment's topic
    meta, _ = capture(replica().learner)
    assert meta["version"] == 1
