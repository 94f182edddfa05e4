"""Right to erasure, made safe against re-delivery.

A ``forget`` wipes a user's profile; events after it in the same batch start a new one. Kafka
offsets are committed after state is durable, so after a crash a forget can be delivered again
while the events that followed it were already applied to the new profile (and are skipped as
replays). Wiping again would then erase those later events for good.

So the new profile records the forget's offset like any applied event's: a re-delivered forget
whose offset the stored profile already holds is recognised as applied and wipes nothing. A forget
with no event after it stores nothing at all (nothing may remain of an erased user), so its offset
is kept in memory, bounded, and seeded into the next profile the user gets from this worker. A
crash loses that memory, but then no later profile exists yet that a re-delivery could wipe.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile, is_replay

#: forgets remembered per worker until the forgotten user's next profile records them; a user
#: who returns after more forgets than this simply starts without the marker (the forget's
#: offset is long committed by then)
REMEMBER = 100_000


@dataclass(frozen=True, slots=True)
class Split:
    """What a batch of one user's events does about erasure."""

    state: UserProfile | None  # the profile to step from (None: no profile)
    events: list[UserEvent]  # the events to step
    wipe: bool  # erase the stored profile (tombstones everywhere) before writing anything


class Erasures:
    """Applies ``forget`` events once, even when Kafka delivers them again."""

    def __init__(self, remember: int = REMEMBER) -> None:
        self.remember = remember
        self._recent: OrderedDict[str, tuple[str, int, int]] = OrderedDict()

    def split(self, state: UserProfile | None, user_id: str, events: Sequence[UserEvent]) -> Split:
        """Everything before the batch's last forget is erased with the profile; what follows
        starts a new profile. A forget already applied (its offset is in the stored profile)
        only drops what came before it in the batch."""
        last = max((i for i, e in enumerate(events) if e.topic == "forget"), default=-1)
        if last < 0:
            return Split(state, list(events), wipe=False)
        forget, rest = events[last], list(events[last + 1 :])
        if state is not None and is_replay(state, forget):
            return Split(state, rest, wipe=False)
        if forget.source is not None:
            self._recent[user_id] = forget.source
            self._recent.move_to_end(user_id)
            while len(self._recent) > self.remember:
                self._recent.popitem(last=False)
        return Split(None, rest, wipe=True)

    def fresh(self, user_id: str) -> UserProfile | None:
        """A new profile for a user forgotten earlier on this worker, holding that forget's
        offset; None when there is nothing to carry (the engine then starts one itself)."""
        source = self._recent.pop(user_id, None)
        if source is None:
            return None
        topic, partition, offset = source
        return UserProfile(user_id=user_id, offsets={f"{topic}:{partition}": offset})
