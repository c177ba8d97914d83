"""market_assets: index compositions and daily, weekly and monthly bars from Stooq, as Dagster assets."""

import warnings

import dagster as dg

# Single-run backfill policies, the only way to load an index in one run, are marked beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from market_assets.definitions import defs  # noqa: E402

__all__ = ["defs"]
