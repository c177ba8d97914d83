"""What a snapshot brings against the previous one, on hand-made frames with hand-checked answers."""

import pandas as pd

from market_assets.domain.candles import with_symbol
from market_assets.domain.judged_rows import NewRows, judged_rows, new_rows
from market_assets_tests.domain.frames import DAYS, daily_bars


def _stored(bars: pd.DataFrame) -> pd.DataFrame:
    """`bars` as the lake stores a snapshot, with its symbol column first."""
    return with_symbol(bars, "SYN.US")


def _day(value: pd.Timestamp | None) -> str | None:
    return None if value is None else f"{value:%Y-%m-%d}"


def test_a_first_snapshot_is_judged_whole():
    bars = daily_bars()

    new = new_rows(None, bars)
    window, judged = judged_rows(bars, new, 4)

    assert new == NewRows(0, None) and len(window) == len(bars)
    assert judged.describe() == "the whole history (first snapshot)"
    assert (_day(judged.first), _day(judged.last), judged.rows) == (DAYS[0], DAYS[-1], 9)


def test_added_bars_are_judged_with_the_context_a_rule_needs():
    bars = daily_bars()

    new = new_rows(_stored(bars.iloc[:7]), bars)
    window, judged = judged_rows(bars, new, 1)

    assert new == NewRows(7, pd.Timestamp(DAYS[6]))
    assert window["date"].tolist() == pd.to_datetime(DAYS[6:]).tolist()
    assert judged.describe() == "the 2 bars added after 2026-11-24, with the 1 bar before them"
    assert (_day(judged.first), judged.rows, judged.context) == (DAYS[6], 3, 1)
    one = judged_rows(bars, new_rows(_stored(bars.iloc[:8]), bars), 4)[1]
    assert one.describe() == "the 1 bar added after 2026-11-25, with the 4 bars before it"


def test_a_context_longer_than_the_history_takes_what_there_is():
    bars = daily_bars()

    window, judged = judged_rows(bars, new_rows(_stored(bars.iloc[:2]), bars), 4)

    assert len(window) == 9 and judged.context == 2


def test_nothing_new_leaves_only_the_context():
    bars = daily_bars()

    new = new_rows(_stored(bars), bars)
    window, judged = judged_rows(bars, new, 4)

    assert new.start == 9 and new.rewritten_from is None and len(window) == 4
    assert judged.describe() == "no bar added or changed after 2026-11-27"


def test_a_rewritten_past_is_judged_from_its_first_changed_bar():
    previous = daily_bars()
    bars = previous.copy()
    bars.loc[3:5, ["open", "high", "low", "close"]] *= 3

    new = new_rows(_stored(previous), bars)
    judged = judged_rows(bars, new, 1)[1]

    assert (new.start, _day(new.rewritten_from)) == (3, "2026-11-19")
    assert judged.describe() == (
        "the 6 bars from 2026-11-19 on: the past was rewritten from 2026-11-19, with the 1 bar before them"
    )


def test_a_changed_volume_counts_and_a_missing_one_equals_a_missing_one():
    previous = daily_bars()
    previous.loc[2, "volume"] = pd.NA
    bars = previous.assign(volume=previous["volume"].astype("float64"))

    assert new_rows(_stored(previous), bars) == NewRows(9, pd.Timestamp(DAYS[-1]))
    bars.loc[6, "volume"] = 1001.0
    assert new_rows(_stored(previous), bars).start == 6


def test_a_dropped_or_inserted_past_bar_shows_at_its_date():
    previous = daily_bars()
    dropped = previous.drop(index=2).reset_index(drop=True)
    inserted = pd.concat([previous.iloc[:5], daily_bars(["2026-11-21"]), previous.iloc[5:]], ignore_index=True)
    last = pd.Timestamp(DAYS[-1])

    assert new_rows(_stored(previous), dropped) == NewRows(2, last, pd.Timestamp("2026-11-18"))
    assert new_rows(_stored(previous), inserted) == NewRows(5, last, pd.Timestamp("2026-11-21"))


def test_bars_gone_from_the_end_are_a_rewrite_with_nothing_to_judge():
    previous = daily_bars()

    new = new_rows(_stored(previous), previous.iloc[:7])

    assert (new.start, _day(new.rewritten_from)) == (7, "2026-11-25")
    assert new.describe(previous.iloc[:7]) == "no bar: the previous snapshot's bars from 2026-11-25 on are gone"
