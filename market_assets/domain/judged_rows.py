"""What a snapshot brings (pure pandas): the bars of a daily snapshot that its warning rules judge,
those new against the symbol's previous snapshot (`new_rows`), with the bars before them a rule
needs (`judged_rows`). Why: docs/design.md#data-quality-checks ("Warnings judge what is new").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market_assets.domain.candles import equal_bars


@dataclass(frozen=True)
class NewRows:
    """The bars of a snapshot its previous snapshot did not hold as they are: those from `start` on."""

    start: int
    """Position of the first bar added or changed (0 for a first snapshot; the snapshot's length
    when nothing is new)."""
    since: pd.Timestamp | None
    """The previous snapshot's last bar; None for a symbol's first snapshot."""
    rewritten_from: pd.Timestamp | None = None
    """The first date where the previous snapshot's bars differ, went or were inserted; None when
    the snapshot only adds bars after `since`."""

    def describe(self, bars: pd.DataFrame) -> str:
        """What the bars from `start` on are, in a phrase: "the 2 bars added after 2026-11-25"."""
        count = len(bars) - self.start
        if self.since is None:
            return "the whole history (first snapshot)"
        if self.rewritten_from is not None:
            if count == 0:
                return f"no bar: the previous snapshot's bars from {self.rewritten_from:%Y-%m-%d} on are gone"
            first, rewritten = bars["date"].iloc[self.start], self.rewritten_from
            return f"the {_count(count)} from {first:%Y-%m-%d} on: the past was rewritten from {rewritten:%Y-%m-%d}"
        if count == 0:
            return f"no bar added or changed after {self.since:%Y-%m-%d}"
        return f"the {_count(count)} added after {self.since:%Y-%m-%d}"


@dataclass(frozen=True)
class Judged:
    """The bars of a snapshot one rule judged, and why those."""

    what: str
    """What the bars bring: "the whole snapshot", "the 1 bar added after 2026-11-25"."""
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    rows: int
    context: int = 0
    """Of `rows`, the bars before the new ones that the rule needs to judge them."""

    @classmethod
    def of(cls, bars: pd.DataFrame, what: str, context: int = 0) -> Judged:
        if bars.empty:
            return cls(what, None, None, 0)
        first, last = pd.Timestamp(bars["date"].iloc[0]), pd.Timestamp(bars["date"].iloc[-1])
        return cls(what, first, last, len(bars), context)

    def describe(self) -> str:
        """`what`, and the bars before it when there are: "..., with the 4 bars before them"."""
        if self.context in (0, self.rows):
            return self.what
        pronoun = "it" if self.rows - self.context == 1 else "them"
        return f"{self.what}, with the {_count(self.context)} before {pronoun}"


def new_rows(previous: pd.DataFrame | None, current: pd.DataFrame) -> NewRows:
    """Where `current` stops being `previous` followed by new bars: the bars are compared position
    for position, date for date and value for value (a missing volume equals a missing volume), so a
    bar dropped or inserted in the past shows at its date. `previous` may carry other columns (the
    stored `symbol`)."""
    if previous is None or previous.empty:
        return NewRows(0, None)
    since = pd.Timestamp(previous["date"].iloc[-1])
    both = min(len(previous), len(current))
    differing = np.flatnonzero(~equal_bars(previous.iloc[:both], current.iloc[:both]))
    if differing.size:
        at = int(differing[0])
        rewritten_from = min(pd.Timestamp(previous["date"].iloc[at]), pd.Timestamp(current["date"].iloc[at]))
        return NewRows(at, since, rewritten_from)
    if len(current) < len(previous):
        return NewRows(len(current), since, pd.Timestamp(previous["date"].iloc[len(current)]))
    return NewRows(len(previous), since)


def judged_rows(bars: pd.DataFrame, new: NewRows, context: int) -> tuple[pd.DataFrame, Judged]:
    """The bars a rule judges: the new bars of `bars` with the `context` bars before them (fewer
    when the history is shorter), and what they are, for the result's metadata."""
    begin = max(0, new.start - context)
    window = bars.iloc[begin:]
    return window, Judged.of(window, new.describe(bars), new.start - begin)


def _count(bars: int) -> str:
    """'1 bar', '3 bars'."""
    return f"{bars} bar" if bars == 1 else f"{bars} bars"
