"""Point-in-time index membership from the compositions seen after each session: spells, runs of
consecutive recorded sessions that listed a symbol.
Why: docs/design.md#compositions-are-what-was-listed-after-a-session.
"""

from __future__ import annotations

import pandas as pd

MEMBERSHIP_COLUMNS = ["index", "symbol", "name", "first_seen", "last_seen", "current"]


def membership_spells(compositions: pd.DataFrame) -> pd.DataFrame:
    """`index, symbol, name, first_seen, last_seen, current` from every stored composition (one
    row per `session`, `index` and `symbol`)."""
    if compositions.empty:
        return pd.DataFrame(columns=MEMBERSHIP_COLUMNS)
    seen = compositions[["index", "session", "symbol", "name"]].copy()
    seen["session"] = pd.to_datetime(seen["session"]).astype("datetime64[ns]")
    rows = []
    for index, listed in seen.groupby("index", sort=True):
        sessions = sorted(listed["session"].unique())
        position = {session: number for number, session in enumerate(sessions)}
        latest = sessions[-1]
        for symbol, own in listed.sort_values("session").groupby("symbol", sort=True):
            numbers = own["session"].map(position).to_numpy()
            # A new spell starts wherever a recorded session of the index did not list the symbol.
            starts = [0, *[i for i in range(1, len(numbers)) if numbers[i] != numbers[i - 1] + 1]]
            ends = [*[i - 1 for i in starts[1:]], len(numbers) - 1]
            for start, end in zip(starts, ends):
                rows.append(
                    {
                        "index": index,
                        "symbol": symbol,
                        "name": own["name"].iloc[end],
                        "first_seen": sessions[numbers[start]],
                        "last_seen": sessions[numbers[end]],
                        "current": sessions[numbers[end]] == latest,
                    }
                )
    return pd.DataFrame(rows, columns=MEMBERSHIP_COLUMNS)


def members_on(membership: pd.DataFrame, index: str, day: str | pd.Timestamp) -> list[str]:
    """Symbols `index` held on `day`, as far as the recorded sessions tell."""
    day = pd.Timestamp(day)
    rows = membership[(membership["index"] == index) & (membership["first_seen"] <= day) & (membership["last_seen"] >= day)]
    return sorted(rows["symbol"])
