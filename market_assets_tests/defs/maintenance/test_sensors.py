"""The `partition_status_cache` sensor: Dagster's cached partition status, rebuilt when the window moves."""

import dagster as dg
import pandas as pd

from market_assets import definitions
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.maintenance.sensors import partition_status_cache, refresh_partition_status
from market_assets.defs.partitions import bars_partitions, symbol_partitions, window_start
from market_assets.domain.exchange_sessions import latest_closed_session


def test_the_partition_status_cache_is_rebuilt_when_the_window_moves(platform):
    """After the rolling window's start moves, the sensor launches a run that rebuilds the status
    Dagster cached for the old window, so the UI's first partition query finds it ready; then it
    has nothing to do."""
    instance = platform.instance
    daily, grid, symbols = bars_asset_key("XNYS", "daily_bars"), bars_partitions["XNYS"], symbol_partitions["XNYS"]
    session = f"{latest_closed_session('XNYS'):%Y-%m-%d}"
    instance.add_dynamic_partitions(symbols.name, ["AAPL.US", "MSFT.US"])
    for symbol in ("AAPL.US", "MSFT.US"):
        instance.report_runless_asset_event(dg.AssetMaterialization(daily, partition=f"{session}|{symbol}"))
    last_month = window_start(pd.Timestamp.now() - pd.DateOffset(months=1))
    assert last_month != window_start()
    old_window = dg.MultiPartitionsDefinition(
        {
            "date": dg.TimeWindowPartitionsDefinition(
                cron_schedule="0 0 * * 1-5", fmt="%Y-%m-%d", start=last_month, end_offset=1
            ),
            "symbol": symbols,
        }
    )
    instance.get_status_by_partition(daily, [], old_window)  # the UI's query before the move

    def cached():
        (record,) = instance.get_asset_records([daily])
        return record.asset_entry.cached_status

    def identifier(definition: dg.MultiPartitionsDefinition) -> str:
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            return definition.get_serializable_unique_identifier()

    assert cached().partitions_def_id == identifier(old_window)
    defs = definitions.defs()
    context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())

    moved = partition_status_cache(context)

    assert isinstance(moved, dg.RunRequest) and moved.tags["market_assets/rebuilds"] == "xnys/daily_bars"
    assert partition_status_cache(context).run_key == moved.run_key  # launched once
    # As the daemon runs it: in a run process that loads the code location.
    rebuilt = platform.dagster("job", "execute", "-m", "market_assets", "-j", refresh_partition_status.name)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert cached().partitions_def_id == identifier(grid)
    materialized = cached().deserialize_materialized_partition_subsets(grid)
    assert set(materialized.get_partition_keys()) == {f"{session}|AAPL.US", f"{session}|MSFT.US"}
    assert partition_status_cache(context).skip_message == "every cached partition status matches its asset's partitions"
