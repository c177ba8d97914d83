"""Each symbol's daily, weekly and monthly bars: the one-step `bars` multi-asset and what it builds
on (targets, fetching, building, checks, adjustment events, metadata), the per-index close jobs,
their planning and executor, and the `close_bars` sensor that launches them."""
