"""The daily checks on two consecutive sessions of real Stooq histories (`FIXTURES`): a symbol's
first snapshot reports the findings of its whole history, the next session's snapshot is judged by
the bar it adds, and what a session can bring wrong (a jump, a stale run at the end, a rewritten
past) is still caught. Each session's snapshot is the recorded file cut at a bar: the first at its
second-last, the next one whole."""

from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pytest

from market_assets.defs.bars.checks import BLOCKING_RULES, Findings, daily_findings, evaluation
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target
from market_assets.domain.adjustment_detection import detect_adjustment
from market_assets.domain.candles import with_symbol
from market_assets.sources.parsing import parse_history_csv
from market_assets_tests.universe import FIXTURES

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"recorded Stooq files not found at {FIXTURES}")

_PRICES = ["open", "high", "low", "close"]


@dataclass(frozen=True)
class _Series(Target):
    """A partition of a Stooq series on a given calendar: the indices' own series (^DJI, WIG20) have
    no suffix that `Target.exchange` knows, the platform loading only their constituents."""

    calendar: str = "XNYS"

    @property
    def exchange(self) -> str:
        return self.calendar


# file, its partition's symbol and calendar, and what its whole history breaks: {rule: (count, first date)}
HISTORIES = [
    ("aapl_us_d.csv", "AAPL.US", "XNYS", {"no_unexplained_jumps": (1, "2000-09-29")}),
    ("msft_us_d.csv", "MSFT.US", "XNYS", {"close_not_repeated": (215, "1986-03-14")}),
    (
        "brk-a_us_d.csv",
        "BRK-A.US",
        "XNYS",
        {"no_missing_sessions": (1, "2011-02-17"), "close_not_repeated": (247, "1981-01-09")},
    ),
    ("^dji_d.csv", "^DJI", "XNYS", {}),
    ("wig20_d.csv", "WIG20", "XWAR", {}),
]


@dataclass(frozen=True)
class _History:
    bars: pd.DataFrame
    symbol: str
    calendar: str

    def findings(self, bars: pd.DataFrame, previous: pd.DataFrame | None) -> tuple[str, Findings]:
        """The partition of the snapshot `bars` and its rules' findings, after the stored snapshot `previous`."""
        session = bars["date"].iloc[-1]
        target = _Series(f"{session:%Y-%m-%d}|{self.symbol}", self.symbol, session, self.calendar)
        stored = None if previous is None else with_symbol(previous, self.symbol)
        adjustment = None if previous is None else detect_adjustment(stored, bars)
        return target.key, daily_findings(target, bars, stored, DataQualityResource(), adjustment)

    def check(self, bars: pd.DataFrame, previous: pd.DataFrame | None) -> dg.AssetCheckEvaluation:
        """The `valid_bars` result on the snapshot `bars`, after the stored snapshot `previous`."""
        key, findings = self.findings(bars, previous)
        return evaluation(bars_asset_key(self.calendar, "daily_bars"), key, findings, None, blocking=True)


@pytest.fixture(params=HISTORIES, ids=[name for name, *_ in HISTORIES])
def history(request) -> tuple[_History, dict[str, tuple[int, str]]]:
    name, symbol, calendar, broken = request.param
    bars = parse_history_csv((FIXTURES / name).read_text(), symbol, f"file://{FIXTURES / name}")
    return _History(bars, symbol, calendar), broken


def _offending(evaluation: dg.AssetCheckEvaluation) -> dict[str, tuple[int, str]]:
    """`{rule: (count, first date)}` of the failed rules, the counts as the description states them
    (the metadata lists the first 100 dates of each; a passing result lists none)."""
    if evaluation.passed:
        assert "offending_dates" not in evaluation.metadata
        return {}
    stated = dict(part.split(": ", 1) for part in evaluation.description.split("; "))
    return {
        rule: (int(stated[rule].split(" ", 1)[0]), dates[0])
        for rule, dates in evaluation.metadata["offending_dates"].value.items()
    }


def _judged(evaluation: dg.AssetCheckEvaluation) -> tuple[str, str, str, int]:
    metadata = evaluation.metadata
    return tuple(metadata[key].value for key in ("judged", "judged_from", "judged_to", "judged_rows"))


def _day(value: pd.Timestamp) -> str:
    return f"{value:%Y-%m-%d}"


def test_the_first_snapshot_reports_the_whole_history_and_the_next_session_passes(history):
    history, broken = history
    bars = history.bars
    first, last, dates = bars.iloc[:-1], bars, bars["date"]

    on_first = history.check(first, None)
    on_next = history.check(last, first)

    assert on_first.passed is not bool(broken) and _offending(on_first) == broken
    assert _judged(on_first) == ("the whole history (first snapshot)", _day(dates.iloc[0]), _day(dates.iloc[-2]), len(first))
    assert on_next.passed and on_next.description == "all 8 rules hold"
    if broken:  # warnings only
        assert on_first.metadata["blocks"].value == "no" and on_first.severity == dg.AssetCheckSeverity.WARN
    else:
        assert "blocks" not in on_first.metadata and on_first.severity == dg.AssetCheckSeverity.ERROR
    assert _judged(on_next) == (
        f"the 1 bar added after {_day(dates.iloc[-2])}, with the 4 bars before it",
        _day(dates.iloc[-5]),
        _day(dates.iloc[-1]),
        5,
    )
    for snapshot, previous in ((first, None), (last, first)):  # the blocking rules judge every bar
        _, findings = history.findings(snapshot, previous)
        for rule in BLOCKING_RULES:
            judged = findings[rule.name].judged
            assert findings[rule.name].passed and (judged.what, judged.rows) == ("the whole snapshot", len(snapshot))


def test_a_new_jump_is_caught(history):
    history, _ = history
    jumped = history.bars.copy()
    jumped.loc[jumped.index[-1], _PRICES] *= 2

    evaluation = history.check(jumped, jumped.iloc[:-1])

    assert evaluation.metadata["failed_rules"].value == "no_unexplained_jumps"
    assert evaluation.metadata["offending_dates"].value == {"no_unexplained_jumps": [_day(jumped["date"].iloc[-1])]}


def test_a_stale_run_ending_at_the_newest_bar_is_caught(history):
    history, _ = history
    stale = history.bars.copy()
    stale.loc[stale.index[-4:], _PRICES] = stale["close"].iloc[-5]  # five closes in a row, the last one new

    before = history.check(stale.iloc[:-1], stale.iloc[:-2])
    evaluation = history.check(stale, stale.iloc[:-1])

    assert before.passed  # four in a row are not yet a stale feed
    assert evaluation.metadata["offending_dates"].value == {"close_not_repeated": [_day(day) for day in stale["date"].iloc[-4:]]}


def test_a_rewritten_past_is_judged_again_from_its_first_changed_bar(history):
    history, _ = history
    bars = history.bars
    rewritten = bars.copy()
    rewritten.loc[rewritten.index[-500:-250], _PRICES] *= 3  # a year of old bars tripled, the newest bar added
    segment = rewritten["date"].iloc[-500]

    evaluation = history.check(rewritten, bars.iloc[:-1])

    # The jump back down where the tripled bars end is where the adjustment detection places a split.
    assert evaluation.metadata["offending_dates"].value == {"no_unexplained_jumps": [_day(segment)]}
    assert _judged(evaluation) == (
        f"the 500 bars from {_day(segment)} on: the past was rewritten from {_day(segment)}, with the 4 bars before them",
        _day(rewritten["date"].iloc[-504]),
        _day(rewritten["date"].iloc[-1]),
        504,
    )


def test_a_split_rewrites_the_whole_past_and_its_findings_are_reported_once_more(history):
    history, broken = history
    bars = history.bars
    split = bars.copy()
    split.loc[split.index[:-1], _PRICES] /= 2  # a 2-for-1 split taking effect on the newest bar

    evaluation = history.check(split, bars.iloc[:-1])

    assert _offending(evaluation) == broken  # nothing at the split itself
    assert _judged(evaluation)[0] == (
        f"the {len(bars)} bars from {_day(bars['date'].iloc[0])} on: the past was rewritten from {_day(bars['date'].iloc[0])}"
    )
