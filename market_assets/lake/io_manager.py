"""The IO manager of every asset: each partition its own parquet file in the lake, written atomically.

It stores the compositions and the membership table the steps return, and loads any stored asset,
the bars included, for an asset downstream. The bars step writes its partitions through the same
store as it builds them (`market_assets.defs.bars.building`), so that a close holds one partition
at a time, not all of a run's: see docs/design.md#one-step-builds-the-three-bars-assets.

Not a `dg.UPathIOManager`, whose layout is the same (`<root>/<asset>/<date>/<symbol>.parquet`):
its `handle_output` refuses an output covering more than one partition (dagster 1.13.27:
`check.invariant(len(paths) == 1, ...)`), which a composition run over a session's indices gives
it, and it leaves the writing itself to the subclass. A subclass would therefore replace the
writing whole and inherit only a computation of paths, a second one beside `ParquetStore.path`,
which every other reader and writer of the lake uses.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import pandas as pd

from market_assets.lake.errors import LakeWriteError
from market_assets.lake.resource import DataLakeResource


class ParquetIOManager(dg.ConfigurableIOManager):
    """One parquet file per partition in the data lake, written atomically.

    Unpartitioned assets are one file, `<root>/<asset>.parquet`. Partitioned steps exchange
    mappings `{partition key: DataFrame}`, whatever the number of partitions, so the same asset
    code serves a one-partition run from the UI and a run over a range of partitions. A step for a
    single partition may also return a plain DataFrame.
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
