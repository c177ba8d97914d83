"""`file_intact`, the first rule of each bars asset's `valid_bars` check (the partition's file reads
back as what was written), and the `verify_bars` job's op, which compares stored files with their
recorded fingerprints and judges intact ones again. Why: docs/design.md#surviving-productions-faults.
"""

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.defs.bars.adjustments import previous_daily
from market_assets.defs.bars.checks import (
    FILE_INTACT,
    Findings,
    check_target,
    daily_findings,
    evaluation,
    latest_materializations,
    resampled_findings,
)
from market_assets.defs.bars.keys import PERIODS, bars_asset_key
from market_assets.defs.bars.metadata import FINGERPRINT
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target, target_of
from market_assets.defs.partitions import bars_key, composition_key
from market_assets.domain.adjustment_detection import detect_adjustment
from market_assets.domain.quality_rules import Finding
from market_assets.lake.compositions import constituents
from market_assets.lake.datasets import BARS, DAILY_BARS
from market_assets.lake.fingerprint import fingerprint
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import get_index


@dataclass(frozen=True)
class Inspected:
    """One partition's file compared with its latest materialization, and judged again."""

    asset_key: dg.AssetKey
    partition: str
    path: str
    problem: str | None
    """What is wrong with the file, naming it; None when it is intact."""
    findings: Findings

    def evaluation(self, record: dg.EventLogRecord) -> dg.AssetCheckEvaluation:
        return evaluation(
            self.asset_key,
            self.partition,
            self.findings,
            check_target(record),
            blocking=False,
            extra={"file": dg.MetadataValue.path(self.path)},
        )


def read_file(store: ParquetStore, asset: str, key: str, recorded: str) -> tuple[pd.DataFrame | None, Finding]:
    """The partition's frame as read back, and the `file_intact` finding of it against the
    fingerprint `recorded` when it was written (no frame when it cannot be read)."""
    path = store.path(asset, key)
    try:
        frame = store.read(asset, key)
    except FileNotFoundError:
        return None, Finding(False, f"{path} is missing")
    except ValueError as error:  # unreadable: the store's message names the file, after the partition
        return None, Finding(False, str(error).removeprefix(f"{asset}[{key}]: "))
    read = fingerprint(frame)
    if read != recorded:
        return frame, Finding(
            False,
            f"{path} holds other rows than were written ({len(frame)} rows; fingerprint {read[:12]}, "
            f"{recorded[:12]} when written)",
        )
    return frame, Finding(True, f"{path} reads back as written ({len(frame)} rows)")


def inspect_partition(
    store: ParquetStore, quality: DataQualityResource, asset_key: dg.AssetKey, target: Target, recorded: str
) -> Inspected:
    """The partition `target` of `asset_key` read back against its `recorded` fingerprint and, when
    intact, judged again by the other rules of its check."""
    asset = asset_key.path[-1]
    frame, intact = read_file(store, asset, target.key, recorded)
    findings = {FILE_INTACT: intact}
    if intact.passed:
        if asset == DAILY_BARS:
            previous = previous_daily(store, target)
            adjustment = None if previous is None else detect_adjustment(previous, frame)
            findings.update(daily_findings(target, frame, previous, quality, adjustment))
        else:
            try:
                daily = store.read(DAILY_BARS, target.key)
            except (FileNotFoundError, ValueError):  # the daily file's own result tells what is wrong with it
                daily = None
            if daily is not None:
                findings.update(resampled_findings(target, daily, frame, PERIODS[asset]))
    problem = None if intact.passed else intact.description
    return Inspected(asset_key, target.key, store.path(asset, target.key), problem, findings)


def inspect_files(
    store: ParquetStore, quality: DataQualityResource, asset_key: dg.AssetKey, records: dict[str, dg.EventLogRecord]
) -> list[tuple[Inspected, dg.EventLogRecord]]:
    """Each partition of `asset_key` whose latest materialization (`records`, by partition key,
    see `latest_materializations`) has a fingerprint, read back, compared with it and judged."""
    inspected = []
    for key, record in records.items():
        materialization = record.asset_materialization
        recorded = materialization.metadata.get(FINGERPRINT) if materialization else None
        if recorded is not None:
            inspected.append((inspect_partition(store, quality, asset_key, target_of(key), recorded.value), record))
    return inspected


class VerifyConfig(dg.Config):
    index: str
    """The index whose members' bars are verified (their stored composition of `session`)."""
    session: str
    """YYYY-MM-DD."""


@dg.op(name="verify_bars_files", out=dg.Out(dg.Nothing))
def verify_bars_files(
    context: dg.OpExecutionContext, config: VerifyConfig, lake: DataLakeResource, quality: DataQualityResource
) -> dg.Output:
    """Read back every bars file of the index's members for the session, compare it with its
    materialization, and report a `valid_bars` result on each partition; fail naming the damaged
    ones (`damaged` metadata: asset, partition and problem of each)."""
    index = get_index(config.index)
    store = lake.store
    members = constituents(store, str(composition_key(config.session, index.name)))
    keys = [str(bars_key(config.session, symbol)) for symbol in members]
    judged, damaged = 0, []
    for name in BARS:
        asset_key = bars_asset_key(index.calendar, name)
        records = latest_materializations(context.instance, asset_key, keys)
        for item, record in inspect_files(store, quality, asset_key, records):
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
