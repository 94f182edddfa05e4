"""Fault injection for recovery tests (documented in README "Guarantees"); never set in production.

Each names a user whose state access raises ``OSError``, as a failing disk would; the agent
cannot proceed, the worker exits 70 (``stream.app.die``) and, restarted without the fault, gets
the un-acknowledged batch again, which must then be reflected exactly once
(tests/integration/test_fatal_path.py). Unset, nothing here runs.

* ``RECSTREAM_FAULT_STATE_READ_USER``: reading the profile fails, before anything of the batch is
  sent — after the restart the batch is applied and its lists are emitted then;
* ``RECSTREAM_FAULT_STATE_WRITE_USER``: the local write fails inside ``Pipeline.commit``, after the
  batch's outputs and changelog records were delivered — the narrowest window: after the restart
  recovery restores the state from the changelog and the re-delivered events are skipped as
  replays (their lists were already on the topic).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from stream.adapters.changelog_store import ChangelogStore

STATE_READ_USER = "RECSTREAM_FAULT_STATE_READ_USER"
STATE_WRITE_USER = "RECSTREAM_FAULT_STATE_WRITE_USER"


def inject_faults(store: ChangelogStore, env: Mapping[str, str] | None = None) -> None:
    """Arm the faults the environment asks for on this worker's store (none by default)."""
    env = os.environ if env is None else env
    if read_user := env.get(STATE_READ_USER):
        get = store.get

        def failing_get(key: str, partition: int | None = None) -> bytes | None:
            if key == read_user:
                raise OSError(f"injected fault ({STATE_READ_USER}): state read failed")
            return get(key, partition)

        store.get = failing_get  # type: ignore[method-assign]
    if write_user := env.get(STATE_WRITE_USER):
        put = store.set

        def failing_set(key: str, value: bytes, partition: int | None = None) -> None:
            if key == write_user:
                raise OSError(f"injected fault ({STATE_WRITE_USER}): state write refused")
            put(key, value, partition)

        store.set = failing_set  # type: ignore[method-assign]
