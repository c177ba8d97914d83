"""The IO manager: a step over many partitions writes one file per partition, atomically, through
the lake; and why it is not a `dg.UPathIOManager` (which refuses such a step's output)."""

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from market_assets.lake.io_manager import ParquetIOManager
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore

_PARTITIONS = dg.MultiPartitionsDefinition(
    {"date": dg.StaticPartitionsDefinition(["2026-11-20"]), "symbol": dg.StaticPartitionsDefinition(["A.US", "B.US"])}
)


@dg.asset(partitions_def=_PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def prices(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
    return {str(key): pd.DataFrame({"close": [float(len(str(key)))]}) for key in context.partition_keys}


class _UPathParquet(dg.UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: object, path: UPath) -> None:
        raise AssertionError("not reached: handle_output refuses first")

    def load_from_path(self, context: dg.InputContext, path: UPath) -> object:
        raise AssertionError("not reached")


def _materialize_both_partitions(io_manager: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [prices],
        resources={"io_manager": io_manager},
        tags={"dagster/asset_partition_range_start": "2026-11-20|A.US", "dagster/asset_partition_range_end": "2026-11-20|B.US"},
        raise_on_error=False,
    )


def test_a_step_over_two_partitions_writes_a_file_for_each(tmp_path):
    result = _materialize_both_partitions(ParquetIOManager(lake=DataLakeResource(root=str(tmp_path))))

    assert result.success
    store = ParquetStore(str(tmp_path))
    assert store.partition_keys("prices") == ["2026-11-20|A.US", "2026-11-20|B.US"]
    pd.testing.assert_frame_equal(store.read("prices", "2026-11-20|B.US"), pd.DataFrame({"close": [15.0]}))
    assert not list(tmp_path.rglob("*.tmp"))


def test_dagsters_upath_io_manager_refuses_the_output_of_a_step_over_two_partitions(tmp_path):
    """Why the IO manager is written against the lake: should the pinned Dagster start taking
    such an output, this fails, and `dg.UPathIOManager` is worth another look."""
    result = _materialize_both_partitions(_UPathParquet(base_path=UPath(tmp_path)))

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "does not support persisting an output associated with multiple partitions" in (
        failure.step_failure_data.error.to_string()
    )
    with pytest.raises(StopIteration):
        next(tmp_path.rglob("*.parquet"))
