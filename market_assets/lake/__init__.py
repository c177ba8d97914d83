"""The lake: parquet paths, reads and the one atomic write path (`store`), and its Dagster face, the
`lake` resource and the IO manager (`resource`, `io_manager`).

Importing this package loads neither Dagster nor the code location."""

from market_assets.lake.store import ParquetStore

__all__ = ["ParquetStore"]
