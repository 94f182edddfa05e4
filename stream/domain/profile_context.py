"""What a user is looking for right now: the latest click context and search.

Apart from ``stream.domain.profile``'s affinity rules because it is a different memory: not
decayed weights but the latest device/locale/source, query text and search filters, replaced
as a whole (never accumulated), which ranking conditions boosts on and matches against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream.domain.events import UserEvent
from stream.domain.features import filter_features

if TYPE_CHECKING:  # profile imports this module: the type only, to avoid the cycle
    from stream.domain.profile import UserProfile

#: a query longer than this is cut: it only feeds a token overlap
MAX_QUERY_CHARS = 256
#: a search's filters beyond this many features, or longer than this, are not kept (they only
#: feed a share; a profile is written on every event and must stay small)
MAX_FILTERS = 16
MAX_FILTER_CHARS = 128


def remember_context(profile: UserProfile, event: UserEvent) -> None:
    """Keep the latest context, query and search filters (a late event does not overwrite a
    newer one). A search replaces the query and filters as a whole, even when it has no text:
    what the user looks for now is that search. A click's query keeps the filters only while
    it is the query they were set with."""
    search = event.topic == "searches"
    if event.ts < profile.query_ts or not (event.context or event.query or search):
        return
    if event.context:
        profile.context = dict(event.context)
    query = (event.query or "")[:MAX_QUERY_CHARS]
    if search:
        profile.query = query
        wanted = [f for f in filter_features(event.filters) if len(f) <= MAX_FILTER_CHARS]
        profile.filters = wanted[:MAX_FILTERS]
    elif query:
        if query != profile.query:
            profile.filters = []
        profile.query = query
    profile.query_ts = event.ts
