"""``_bump_features`` (both horizons, arithmetic inlined) against ``_bump`` per feature: the same
weights and times bit for bit, in the same dict order, late and same-instant events included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.domain.profile import DEFAULT_PROFILE_CONFIG as CFG
from stream.domain.profile import UserProfile, _bump, _bump_features

T0 = 1_767_225_600_000
_step = st.tuples(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=0, max_size=5),
    st.sampled_from([1.0, 0.5, 3.0, -2.0, 5.0, -6.0]),
    st.integers(-3 * 3_600_000, 3 * 3_600_000),  # late events too: time goes both ways
)


@given(st.lists(_step, max_size=40))
def test_bump_features_matches_bump_per_feature(steps: list[tuple[list[str], float, int]]) -> None:
    fast, slow = UserProfile("u"), UserProfile("u")
    ts = T0
    for features, delta, dt in steps:
        ts = ts + dt if dt % 3 else ts  # a third of the events at the same instant
        _bump_features(fast, iter(features), delta, ts, CFG)  # any iterable of features
        for feature in features:
            _bump(slow.session, feature, delta, ts, CFG.session_tau_ms)
            _bump(slow.long_term, feature, delta, ts, CFG.long_tau_ms)
    assert list(fast.session.items()) == list(slow.session.items())
    assert list(fast.long_term.items()) == list(slow.long_term.items())
