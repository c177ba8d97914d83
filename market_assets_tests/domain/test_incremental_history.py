"""Incremental histories: the stored snapshot is extended only when the overlap is published
unchanged, value for value; any rewrite or unexpected answer declines."""

import pandas as pd
import pytest

from market_assets.domain.incremental_history import OVERLAP_BARS, extend, overlap_start
from market_assets_tests.domain.frames import DAYS, daily_bars

STORED = daily_bars(DAYS[:-2])
"""The previous snapshot: up to 2026-11-24."""
WHOLE = daily_bars(DAYS)
"""What the whole history gives a session later: two more bars, nothing rewritten."""


def _recent(frame: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] >= since].reset_index(drop=True)


def test_the_overlap_is_the_last_bars_of_the_stored_snapshot():
    assert overlap_start(STORED) == STORED["date"].iloc[-OVERLAP_BARS]
    assert overlap_start(STORED.iloc[:2]) == STORED["date"].iloc[0]  # fewer bars than the overlap: all
    assert overlap_start(STORED.iloc[:0]) is None


def test_an_unchanged_overlap_extends_the_stored_snapshot_to_what_the_whole_history_gives():
    since = overlap_start(STORED)

    extended = extend(STORED, _recent(WHOLE, since), since)

    pd.testing.assert_frame_equal(extended, WHOLE)
    pd.testing.assert_frame_equal(extend(STORED, _recent(STORED, since), since), STORED)  # no new bar


def test_a_dividend_or_a_split_on_the_newest_session_rewrites_the_overlap_and_is_refused():
    since = overlap_start(STORED)
    for factor in (0.9975, 0.5):  # a quarterly dividend's factor; a 2-for-1 split
        rewritten = WHOLE.copy()
        before = rewritten["date"] < rewritten["date"].iloc[-1]
        rewritten.loc[before, ["open", "high", "low", "close"]] *= factor

        assert extend(STORED, _recent(rewritten, since), since) is None, factor


@pytest.mark.parametrize(
    "change",
    [
        "volume",  # one stored bar's volume corrected
        "dropped",  # a stored bar no longer published
        "starts_later",  # the answer does not start where it was asked to
        "repeated",  # a new bar dated like a stored one
        "empty",
    ],
)
def test_any_other_difference_in_the_answer_is_refused(change):
    since = overlap_start(STORED)
    recent = _recent(WHOLE, since)
    if change == "volume":
        recent.loc[1, "volume"] = 999.0
    elif change == "dropped":
        recent = recent.drop(index=2).reset_index(drop=True)
    elif change == "starts_later":
        recent = recent.iloc[1:].reset_index(drop=True)
    elif change == "repeated":
        recent = pd.concat([recent.iloc[:OVERLAP_BARS], recent.iloc[[OVERLAP_BARS - 1]]], ignore_index=True)
    else:
        recent = recent.iloc[:0]

    assert extend(STORED, recent, since) is None


def test_missing_volumes_are_equal_to_missing_volumes():
    stored, whole = STORED.copy(), WHOLE.copy()
    stored["volume"] = pd.array([None] * len(stored), dtype="Float64")
    whole["volume"] = pd.array([None] * len(whole), dtype="Float64")
    since = overlap_start(stored)

    pd.testing.assert_frame_equal(extend(stored, _recent(whole, since), since), whole)
