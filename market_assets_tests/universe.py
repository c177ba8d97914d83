"""What the tests ask of the synthetic universe the project's server serves."""

import pandas as pd

from market_assets_tests.platform import PROJECT_ROOT
from stooq_server.synthetic import SyntheticUniverse

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "stooq"
"""Real recorded Stooq answers, beside the project root (`../shared/fixtures/stooq`)."""


def last_session(universe: SyntheticUniverse, exchange: str) -> str:
    """The universe's last session on `exchange`, as a partition's date."""
    return f"{universe.last_session[exchange]:%Y-%m-%d}"


def served_daily(universe: SyntheticUniverse, symbol: str, session: str) -> pd.DataFrame:
    """The daily bars the server answers for `symbol`, up to `session`."""
    frame = pd.read_csv(universe.data_dir / "d" / f"{symbol.lower()}.csv", parse_dates=["Date"])
    frame = frame.rename(columns=str.lower)
    return frame[frame["date"] <= pd.Timestamp(session)].reset_index(drop=True)
