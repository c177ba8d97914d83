"""The IO manager of every asset: each partition its own parquet file in the lake, written atomically
through the lake's store. It stores what steps return (compositions, the membership table) and
loads any stored asset for an asset downstream. Why not a `dg.UPathIOManager`:
docs/design.md#the-io-manager.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import pandas as pd

from market_assets.lake.errors import LakeWriteError
from market_assets.lake.resource import DataLakeResource


class ParquetIOManager(dg.ConfigurableIOManager):
    """One parquet file per partition in the data lake, written atomically.

    Partitioned steps exchange mappings `{partition key: DataFrame}` whatever the number of
    partitions (a single partition's step may return a plain DataFrame); an unpartitioned asset is
    one file, `<root>/<asset>.parquet`.
    """

    lake: dg.ResourceDependency[DataLakeResource]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | Mapping[str, pd.DataFrame]) -> None:
        with write_failures():
            self._write(context, obj)

    def _write(self, context: dg.OutputContext, obj: pd.DataFrame | Mapping[str, pd.DataFrame]) -> None:
        asset = context.asset_key.path[-1]
        store = self.lake.store
        if not context.has_asset_partitions:
            store.write(asset, None, obj)
            context.log.info(f"{asset} written to {store.path(asset)}")
            return
        keys = _partition_keys(context)
        frames = obj if isinstance(obj, Mapping) else {keys[0]: obj} if len(keys) == 1 else {}
        if set(frames) != set(keys):
            raise dg.Failure(
                f"{asset}: the step covers {len(keys)} partitions but returned "
                f"{len(frames) or 'no mapping of'} frames; return one frame per partition key"
            )
        # The run's log names where its files are; each materialization has its own file's path.
        context.log.info(store.write_partitions(asset, {key: frames[key] for key in keys}))

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict[str, pd.DataFrame]:
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return self.lake.store.read(asset)
        return {key: self.lake.store.read(asset, key) for key in _partition_keys(context)}


@contextmanager
def write_failures() -> Iterator[None]:
    """Turn a `LakeWriteError` into the step's failure, retried by the retry policy only when
    retrying can help (not on a full volume)."""
    try:
        yield
    except LakeWriteError as error:
        raise dg.Failure(
            description=str(error),
            metadata={"file": dg.MetadataValue.path(error.path)},
            allow_retries=error.retryable,
        ) from error


def _partition_keys(context: dg.OutputContext | dg.InputContext) -> list[str]:
    return [str(key) for key in context.asset_partition_keys]
