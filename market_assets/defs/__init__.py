"""The Dagster definitions, one folder per domain (`compositions`, `bars`, `maintenance`, `alerts`),
each building its own `Definitions` in its `definitions.py`; the modules here are what they share.
`market_assets.definitions` merges them into the code location's one `Definitions`."""

import warnings

import dagster as dg

# Single-run backfill policies, the only way to load an index in one run, are marked beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
