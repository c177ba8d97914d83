"""`partition_status_cache`: Dagster's partition-status cache, rebuilt in the daemon rather than by
the UI's next query; `abandoned_runs`: runs whose process died, failed so that they run again."""

import dagster as dg

from market_assets.defs.runs import close_in_flight, fail_abandoned_runs


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def partition_status_cache(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Rebuild Dagster's partition-status cache of each asset whose partitions changed.

    Dagster keeps each partitioned asset's status in a cache keyed by its partitions, the date
    window and the registered symbols: the window's start moves on the first code location load
    of a month (`market_assets.defs.partitions.window_start`), and a composition registers new
    constituents. The first status query after either (the UI's asset page) would rebuild the
    cache from every stored materialization, about 4 s for three years of 210 symbols
    (bench/partition_scale.py). Done here, once no close run is in flight, it costs the daemon
    those seconds and no user any. A tick with nothing to rebuild reads one record per asset.
    """
    if context.repository_def is None:
        raise ValueError("partition_status_cache reads the assets of its code location: evaluate it in one")
    if close_in_flight(context.instance):
        return dg.SkipReason("a close run is in flight: the cache is rebuilt once it has ended")
    graph = context.repository_def.asset_graph
    partitioned = {key: graph.get(key).partitions_def for key in graph.materializable_asset_keys}
    partitioned = {key: definition for key, definition in partitioned.items() if definition is not None}
    records = {record.asset_entry.asset_key: record for record in context.instance.get_asset_records(list(partitioned))}
    rebuilt = []
    for key, definition in sorted(partitioned.items()):
        cached = records[key].asset_entry.cached_status if key in records else None
        with dg.partition_loading_context(dynamic_partitions_store=context.instance):
            current = definition.get_serializable_unique_identifier()
        if cached is None or cached.partitions_def_id == current:
            continue
        context.instance.get_status_by_partition(key, [], definition)
        rebuilt.append(key.to_user_string())
    if rebuilt:
        return dg.SkipReason(f"rebuilt the partition-status cache of {', '.join(rebuilt)}: their partitions changed")
    return dg.SkipReason("every cached partition status matches its asset's partitions")


@dg.sensor(minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def abandoned_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Fail the started runs of this machine whose process has died (`fail_abandoned_runs`) and
    free their request slots; the instance's run retries (`run_retries` in dagster.yaml) then run
    them again from the step they did not finish. Every 10 s: a tick reads the started runs only.
    """
    failed = fail_abandoned_runs(context.instance)
    if failed:
        return dg.SkipReason(f"failed {len(failed)} runs whose process is gone, to be retried: {', '.join(failed)}")
    return dg.SkipReason("every started run's process is alive")
