"""What keeps the instance quick to use and the same size: no assets of its own, only upkeep of Dagster's
caches, the lake's compaction and the instance's retention."""
