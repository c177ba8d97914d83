"""`partition_status_cache`: Dagster's partition-status cache, rebuilt by a run rather than by the
UI's next query; `abandoned_runs`: runs whose process died, failed so that they run again."""

import hashlib

import dagster as dg

from market_assets.defs.runs import close_in_flight, fail_abandoned_runs


def stale_partition_statuses(
    instance: dg.DagsterInstance, repository: dg.RepositoryDefinition
) -> dict[dg.AssetKey, tuple[dg.PartitionsDefinition, str]]:
    """The partitioned assets whose cached partition status was built for other partitions, with
    their partitions and the identifier Dagster caches their status under now."""
    graph = repository.asset_graph
    partitioned = {key: graph.get(key).partitions_def for key in graph.materializable_asset_keys}
    partitioned = {key: definition for key, definition in partitioned.items() if definition is not None}
    records = {record.asset_entry.asset_key: record for record in instance.get_asset_records(list(partitioned))}
    stale = {}
    for key, definition in sorted(partitioned.items()):
        cached = records[key].asset_entry.cached_status if key in records else None
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            current = definition.get_serializable_unique_identifier()
        if cached is not None and cached.partitions_def_id != current:
            stale[key] = (definition, current)
    return stale


@dg.op(description="Rebuild Dagster's partition-status cache of the assets whose partitions changed.")
def rebuild_partition_statuses(context: dg.OpExecutionContext) -> dg.Output[None]:
    """Rebuild the cache of every asset whose status was cached for other partitions, from its
    stored materializations: the seconds the UI's next partition query would have taken."""
    stale = stale_partition_statuses(context.instance, context.repository_def)
    for key, (definition, _) in stale.items():
        context.instance.get_status_by_partition(key, [], definition)
        context.log.info(f"rebuilt the partition-status cache of {key.to_user_string()}")
    return dg.Output(None, metadata={"rebuilt": dg.MetadataValue.text(", ".join(k.to_user_string() for k in stale) or "none")})


@dg.job(
    description="Rebuild Dagster's partition-status cache of the assets whose partitions changed (the window moved, symbols were added)."
)
def refresh_partition_status() -> None:
    rebuild_partition_statuses()


@dg.sensor(job=refresh_partition_status, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def partition_status_cache(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Launch `refresh_partition_status` when an asset's partitions changed (the window moved,
    symbols were registered), once no close run is in flight, so that no one opening an asset page
    waits for Dagster's partition-status cache to be rebuilt.
    Why: docs/design.md#the-partition-window-and-the-partition-status-cache.
    """
    if context.repository_def is None:
        raise ValueError("partition_status_cache reads the assets of its code location: evaluate it in one")
    if close_in_flight(context.instance):
        return dg.SkipReason("a close run is in flight: the cache is rebuilt once it has ended")
    stale = stale_partition_statuses(context.instance, context.repository_def)
    if not stale:
        return dg.SkipReason("every cached partition status matches its asset's partitions")
    identity = "|".join(f"{key.to_user_string()}={current}" for key, (_, current) in stale.items())
    return dg.RunRequest(
        run_key=f"partition-status|{hashlib.sha256(identity.encode()).hexdigest()[:16]}",
        tags={"market_assets/rebuilds": ", ".join(key.to_user_string() for key in stale)},
    )


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
