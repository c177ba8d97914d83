"""What keeps the instance quick to use: no assets of its own, only upkeep of Dagster's caches."""
