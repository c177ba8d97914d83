"""The instance's sqlite storage (`market_assets.instance.pooled_sqlite`) writes a run's asset events
in batches: what it stores reads back exactly as what Dagster's own sqlite storage stores, a
process finds at once what it stored, and a process killed in the middle of a step leaves an
instance that holds everything it read back, with nothing half written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

_POOLED = (
    "storage:\n  custom:\n    module: market_assets.instance.pooled_sqlite\n    class: PooledSqliteStorage\n"
    "    config:\n      base_dir:\n        env: DAGSTER_HOME\n"
)

_STEP = """
import os, sys, warnings
import dagster as dg

warnings.simplefilter("ignore")
from market_assets.dagster_internals import AssetCheckEvaluationTargetMaterializationData

symbols = dg.DynamicPartitionsDefinition(name="symbols")
grid = dg.MultiPartitionsDefinition({"date": dg.StaticPartitionsDefinition(["2026-12-04"]), "symbol": symbols})
STOP_AFTER = int(os.environ.get("STOP_AFTER", "0"))


@dg.multi_asset(
    specs=[dg.AssetSpec("bars", partitions_def=grid)],
    check_specs=[dg.AssetCheckSpec("valid", asset="bars", partitions_def=grid)],
    partitions_def=grid,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def bars(context: dg.AssetExecutionContext):
    keys = [str(key) for key in context.partition_keys]
    for number, key in enumerate(keys):
        if STOP_AFTER and number == STOP_AFTER:
            # What the step reads back is stored; then it dies before anything else is.
            seen = context.instance.get_materialized_partitions(dg.AssetKey("bars"))
            print(f"read back {len(seen)}", flush=True)
        if STOP_AFTER and number == STOP_AFTER + 7:
            os.kill(os.getpid(), 9)
        date, symbol = key.split("|")
        yield dg.AssetMaterialization(
            asset_key="bars", partition=key, metadata={"rows": number, "symbol": symbol},
            tags={"dagster/partition/date": date, "dagster/partition/symbol": symbol},
        )
    records = {
        record.partition_key: record
        for record in context.instance.fetch_materializations(dg.AssetKey("bars"), limit=len(keys)).records
    }
    yield dg.Output(None, output_name="bars_valid")
    for key in keys:
        record = records[key]
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("bars"), check_name="valid", passed=not key.endswith("3"), partition=key,
            severity=dg.AssetCheckSeverity.WARN, metadata={"rule": "made up"},
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            ),
        )


job = dg.define_asset_job("close", selection=[bars], partitions_def=grid)
defs = dg.Definitions(assets=[bars], jobs=[job])

with dg.DagsterInstance.get() as instance:
    names = [f"S{number:04d}" for number in range(int(sys.argv[1]))]
    instance.add_dynamic_partitions("symbols", names)
    result = defs.resolve_job_def("close").execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": f"2026-12-04|{names[0]}",
              "dagster/asset_partition_range_end": f"2026-12-04|{names[-1]}"},
        raise_on_error=False,
    )
    print("success" if result.success else "failure", flush=True)
"""


def _close(home: Path, partitions: int, stop_after: int = 0) -> subprocess.CompletedProcess:
    """The step above over `partitions` partitions, run in a process of its own on the instance at `home`."""
    script = home.parent / "step.py"
    script.write_text(textwrap.dedent(_STEP))
    # The hash seed fixed: Dagster orders the partitions of an output by a set, and both storages must see one order.
    env = {"DAGSTER_HOME": str(home), "STOP_AFTER": str(stop_after), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, str(script), str(partitions)], env=env, capture_output=True, text=True, timeout=600)


def _home(folder: Path, pooled: bool) -> Path:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(_POOLED if pooled else "")
    return home


def _stored(home: Path) -> dict[str, object]:
    """What the instance at `home` says of the asset and its check, with the run's own ids left out."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            key = dg.AssetKey("bars")
            records = instance.fetch_materializations(key, limit=10_000).records
            by_partition = {record.partition_key: record for record in records}
            check = dg.AssetCheckKey(key, "valid")
            executions = instance.event_log_storage.get_asset_check_execution_history(check, limit=10_000)
            run_events = [
                record.event_log_entry.dagster_event_type
                for run in instance.get_runs()
                for record in instance.get_records_for_run(run.run_id, limit=100_000).records
            ]
            latest = instance.get_latest_materialization_event(key)
            return {
                "materialized": sorted(instance.get_materialized_partitions(key)),
                "metadata": {p: r.asset_materialization.metadata["rows"].value for p, r in by_partition.items()},
                "tags": {p: dict(r.asset_materialization.tags) for p, r in by_partition.items()},
                "checks": sorted(_check_result(execution, by_partition) for execution in executions),
                "latest": latest.dagster_event.partition if latest else None,
                "events": sorted(str(kind) for kind in run_events),
                "planned": len([e for e in run_events if e == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED]),
            }


def _check_result(execution, by_partition) -> tuple[str, str, str | None, bool | None]:
    """A check execution's partition, status, metadata and whether it points at its partition's
    latest materialization; a planned execution has no result yet, so neither of the last two."""
    result = execution.event.dagster_event.event_specific_data if execution.event else None
    if not isinstance(result, dg.AssetCheckEvaluation):
        return execution.partition, execution.status.value, None, None
    pointed = result.target_materialization_data.storage_id
    return (
        execution.partition,
        execution.status.value,
        result.metadata["rule"].value,
        by_partition[execution.partition].storage_id == pointed,
    )


def test_events_stored_in_batches_read_back_as_dagsters_own_storage_stores_them(tmp_path):
    partitions = 1234  # more than one batch of each kind
    dagster_own, pooled = _home(tmp_path / "dagster", False), _home(tmp_path / "pooled", True)

    assert _close(dagster_own, partitions).stdout.strip() == "success"
    assert _close(pooled, partitions).stdout.strip() == "success"

    expected, found = _stored(dagster_own), _stored(pooled)
    assert found == expected
    assert len(found["materialized"]) == partitions == found["planned"]
    assert sum(1 for _, status, _, points in found["checks"] if status == "FAILED" and points) == partitions // 10 + 1


def test_a_step_killed_with_events_held_leaves_what_it_read_back_and_nothing_half_written(tmp_path):
    home = _home(tmp_path, True)

    killed = _close(home, 300, stop_after=120)

    assert killed.returncode == -9 and "read back 120" in killed.stdout, killed.stdout + killed.stderr[-2000:]
    stored = _stored(home)
    # Everything the step read back is there; what it held after that went with it, whole: no
    # materialization without its row in the asset's index, no check result.
    assert stored["materialized"] == [f"2026-12-04|S{number:04d}" for number in range(120)]
    assert sorted(stored["metadata"].values()) == list(range(120))
    assert stored["latest"] == "2026-12-04|S0119"
    assert {(status, rule) for _, status, rule, _ in stored["checks"]} <= {("PLANNED", None)}
    assert stored["planned"] == 300
    # A second run of the same partitions completes them.
    assert _close(home, 300).stdout.strip() == "success"
    assert len(_stored(home)["materialized"]) == 300
