"""Dagster IO manager persisting every asset partition as its own parquet file."""


from collections.abc import Mapping

import dagster as dg
import pandas as pd

from market_assets.resources import DataLakeResource


class ParquetIOManager(dg.ConfigurableIOManager):
    """One parquet file per partition in the data lake, written atomically.

    Unpartitioned assets are one file, `<root>/<asset>.parquet`. Partitioned steps exchange
    mappings `{partition key: DataFrame}`, whatever the number of partitions, so the same asset
    code serves a one-partition run from the UI and a close run over an index's constituents. A
    step for a single partition may also return a plain DataFrame.
    """

    lake: dg.ResourceDependency[DataLakeResource]

    def handle_output(
        self, context: dg.OutputContext, obj: pd.DataFrame | Mapping[str, pd.DataFrame]
    ) -> None:
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
        for key in keys:
            store.write(asset, key, frames[key])
        # The run's log names where its files are; each materialization has its own file's path.
        folders = sorted({store.path(asset, key).rsplit("/", 1)[0] for key in keys})
        files = f"{len(keys)} partition" + ("s" if len(keys) > 1 else "")
        context.log.info(f"{asset}: {files} written under {', '.join(folders)}")

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict[str, pd.DataFrame]:
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return self.lake.store.read(asset)
        return {key: self.lake.store.read(asset, key) for key in _partition_keys(context)}


def _partition_keys(context: dg.OutputContext | dg.InputContext) -> list[str]:
    return [str(key) for key in context.asset_partition_keys]
