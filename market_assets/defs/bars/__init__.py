"""Each symbol's daily, weekly and monthly bars: one multi-asset step per exchange and what it builds
on (targets, fetching, building, checks, adjustment events, metadata), the per-index close jobs,
their planning and executor, and the `close_bars` sensor that launches them."""
