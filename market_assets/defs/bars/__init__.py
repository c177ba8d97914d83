"""Each symbol's daily, weekly and monthly bars: one multi-asset step per exchange and what it
builds on, its checks, the per-index close jobs and the `close_bars` sensor (`definitions.py`)."""
