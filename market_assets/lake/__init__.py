"""The lake: parquet paths, reads and the one atomic write path (`store`), and its Dagster face, the
`lake` resource and the IO manager (`resource`, `io_manager`). Importing it loads no Dagster."""

from market_assets.lake.store import ParquetStore

__all__ = ["ParquetStore"]
