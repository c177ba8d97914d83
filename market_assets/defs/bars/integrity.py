"""`file_intact`: each bars partition's file reads back as what was written.

Every bars materialization records the fingerprint of the frame it wrote (its `fingerprint`
metadata, `market_assets.lake.fingerprint`). The check compares it with the partition as read back
from the lake:

- **in the bars step**, right after its files are written: a file that does not read back fails
  the step, and the retry policy writes it again;
- **by the `verify_bars` job** (`jobs.py`; `python -m market_assets verify`, or the launchpad), at any later
  time: a file truncated, removed or overwritten by something else since is reported on its
  partition, the run fails naming it, and `verify --repair` loads it again by a forced close run.

Partitions materialized before fingerprints were recorded are not judged: nothing says what they held.
"""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from market_assets.defs.bars.checks import check_target, latest_materializations
from market_assets.defs.bars.keys import BARS_ASSETS, bars_asset_key
from market_assets.defs.bars.metadata import FINGERPRINT
from market_assets.defs.partitions import bars_key, composition_key
from market_assets.lake.fingerprint import fingerprint
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import get_index

FILE_INTACT = "file_intact"


def file_intact_spec(asset: dg.AssetKey, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks, see checks.py
        return dg.AssetCheckSpec(
            FILE_INTACT,
            asset=asset,
            description=(
                "The partition's file reads back whole and holds exactly what was written (its "
                "materialization's fingerprint): checked after each write and by `python -m "
                "market_assets verify`."
            ),
            partitions_def=partitions_def,
            metadata={"severity": dg.AssetCheckSeverity.ERROR.value},
        )


@dataclass(frozen=True)
class Inspected:
    """One partition's file compared with its latest materialization."""

    asset_key: dg.AssetKey
    partition: str
    path: str
    problem: str | None
    """What is wrong with the file, naming it; None when it is intact."""

    def evaluation(self, record: dg.EventLogRecord) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=self.asset_key,
            check_name=FILE_INTACT,
            passed=self.problem is None,
            severity=dg.AssetCheckSeverity.ERROR,
            partition=self.partition,
            target_materialization_data=check_target(record),
            description=self.problem,
            metadata={"file": dg.MetadataValue.path(self.path), "problem": dg.MetadataValue.text(self.problem or "none")},
        )


def inspect_files(
    store: ParquetStore, asset_key: dg.AssetKey, records: Mapping[str, dg.EventLogRecord]
) -> list[tuple[Inspected, dg.EventLogRecord]]:
    """Each partition of `asset_key` whose latest materialization (`records`, by partition key,
    see `latest_materializations`) has a fingerprint, read back and compared with it."""
    asset = asset_key.path[-1]
    inspected = []
    for key, record in records.items():
        materialization = record.asset_materialization
        recorded = materialization.metadata.get(FINGERPRINT) if materialization else None
        if recorded is None:
            continue
        path = store.path(asset, key)
        inspected.append((Inspected(asset_key, key, path, _problem(store, asset, key, path, recorded.value)), record))
    return inspected


def _problem(store: ParquetStore, asset: str, key: str, path: str, recorded: str) -> str | None:
    try:
        frame = store.read(asset, key)
    except FileNotFoundError:
        return f"{path} is missing"
    except ValueError as error:  # unreadable: the store's message names the file, after the partition
        return str(error).removeprefix(f"{asset}[{key}]: ")
    read = fingerprint(frame)
    if read != recorded:
        return (
            f"{path} holds other rows than were written ({len(frame)} rows; fingerprint {read[:12]}, "
            f"{recorded[:12]} when written)"
        )
    return None


def read_back(
    context: dg.AssetExecutionContext,
    store: ParquetStore,
    asset_key: dg.AssetKey,
    records: Mapping[str, dg.EventLogRecord],
) -> list[dg.AssetCheckEvaluation]:
    """In the bars step, once the files of the partitions of `records` (their materializations)
    are written: one `file_intact` result per partition, or, when any file does not read back, a
    failure naming them (retried: writing again may succeed)."""
    if dg.AssetCheckKey(asset_key, FILE_INTACT) not in context.selected_asset_check_keys:
        return []
    inspected = inspect_files(store, asset_key, records)
    damaged = [item.problem for item, _ in inspected if item.problem]
    if damaged:
        listed = "\n".join(f"- {problem}" for problem in damaged)
        raise dg.Failure(f"{len(damaged)} files written by this step do not read back as written:\n{listed}")
    return [item.evaluation(record) for item, record in inspected]


class VerifyConfig(dg.Config):
    index: str
    """The index whose members' bars are verified (their stored composition of `session`)."""
    session: str
    """YYYY-MM-DD."""


@dg.op(name="verify_bars_files", out=dg.Out(dg.Nothing))
def verify_bars_files(context: dg.OpExecutionContext, config: VerifyConfig, lake: DataLakeResource) -> dg.Output:
    """Read back every bars file of the index's members for the session, compare it with its
    materialization, and report a `file_intact` result on each partition; fail naming the
    damaged ones (`damaged` metadata: asset, partition and problem of each)."""
    index = get_index(config.index)
    store = lake.store
    members = list(store.read("index_composition", str(composition_key(config.session, index.name)))["symbol"])
    keys = [str(bars_key(config.session, symbol)) for symbol in members]
    judged, damaged = 0, []
    for name in BARS_ASSETS:
        asset_key = bars_asset_key(index.calendar, name)
        for item, record in inspect_files(store, asset_key, latest_materializations(context.instance, asset_key, keys)):
            context.log_event(item.evaluation(record))
            judged += 1
            if item.problem:
                damaged.append(item)
    if damaged:
        listed = "\n".join(f"- {item.asset_key.to_user_string()}[{item.partition}]: {item.problem}" for item in damaged)
        raise dg.Failure(
            description=f"{len(damaged)} of {judged} bars files of {index.name} {config.session} are damaged:\n{listed}",
            metadata={
                "verified": judged,
                "damaged": dg.MetadataValue.json(
                    [{"asset": i.asset_key.to_user_string(), "partition": i.partition, "problem": i.problem} for i in damaged]
                ),
            },
            allow_retries=False,
        )
    return dg.Output(None, metadata={"verified": judged, "damaged": dg.MetadataValue.json([])})
