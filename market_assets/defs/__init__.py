"""The Dagster definitions, by domain: `compositions` (which symbols an index holds), `bars` (each
symbol's daily, weekly and monthly bars) and `maintenance` (what keeps the instance quick). Each
domain holds its assets, checks, jobs, schedules and sensors; the modules here are what they share.
`market_assets.definitions` combines them into the code location's one `Definitions`."""

import warnings

import dagster as dg

# Single-run backfill policies, the only way to load an index in one run, are marked beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
