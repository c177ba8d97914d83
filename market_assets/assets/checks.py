"""Asset checks of the bars: which rules of `market_assets.checks` run on which asset, and which block.

The checks run inside the step that materializes the asset (`check_specs` of `daily_bars`,
`weekly_bars`, `monthly_bars`), on the frames the step writes, and report one result per
(session, symbol) partition with the offending dates in its metadata.

**Which checks block, and why.** A check blocks when weekly or monthly bars built on a failing
snapshot would be wrong themselves:

- `high_low_consistent`, `prices_positive`, `volume_not_negative`: a bad high, low, price or
  volume goes straight into the week's and the month's bar (their high, low, close or summed volume);
- `dates_unique_and_increasing`: a repeated or misplaced day is counted twice or in the wrong bar;
- `ends_at_session`: a stale snapshot would be resampled into bars labelled as up to date, with a
  wrong `incomplete` flag.

The others warn: `no_missing_sessions` (a halted stock has no bar, and its weeks are right for
what traded), `no_unexplained_jumps` (a real crash or rally exceeds any threshold now and then) and
`close_not_repeated` (an illiquid stock can close unchanged for days). They are shown in the UI on
the partition but do not stop its weekly and monthly bars.

**Blocking per partition.** A close run covers hundreds of symbols in one step per asset. Dagster
1.13's `blocking=True` acts per step: one failing symbol would fail the `daily_bars` step and skip
the weekly and monthly bars of every symbol in the run. So the specs are not `blocking` in
Dagster's sense; instead `weekly_bars` and `monthly_bars` apply the blocking rules to each
partition's daily snapshot (`blocked_partitions`), store and record the bars of the partitions
that pass, and fail naming the partitions they refused. The same holds when they run on their own
(a weekly-only run from the UI). The rules are re-applied to the snapshot rather than read back
from the recorded results: they are pure and take milliseconds, and the gate then depends on the
data only, not on which runs recorded what.

**Partitioned results.** The specs carry the bars' `partitions_def` (a preview feature of dagster
1.13, hence its `PreviewWarning`), and each result names its partition. `AssetCheckResult` only
takes the partition of a single-partition run, so a step over a range of partitions (a close run)
reports `AssetCheckEvaluation`s with their partition set (`check_evaluations`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.adjustments import Adjustment
from market_assets.bars import Period
from market_assets.checks import (
    Finding,
    close_not_repeated,
    dates_unique_and_increasing,
    ends_at_session,
    high_low_consistent,
    incomplete_flag_right,
    no_missing_sessions,
    no_unexplained_jumps,
    prices_positive,
    resampled_agree_with_daily,
    volume_not_negative,
)
from market_assets.partitions import bars_partitions, dimensions
from market_assets.resources import DataQualityResource
from market_assets.sessions import calendar_for_symbol

_LISTED_DATES = 100
"""Offending dates listed in a result's metadata (the count is always complete)."""


@dataclass(frozen=True)
class Snapshot:
    """What the daily rules look at: one partition's bars and what is known about them."""

    bars: pd.DataFrame
    symbol: str
    session: pd.Timestamp
    quality: DataQualityResource | None
    """The thresholds of the warning checks (the blocking ones take none)."""
    adjustment: Adjustment | None = None

    @property
    def calendar(self) -> str:
        return calendar_for_symbol(self.symbol)


@dataclass(frozen=True)
class DailyCheck:
    name: str
    description: str
    blocking: bool
    rule: Callable[[Snapshot], Finding]


DAILY_CHECKS: tuple[DailyCheck, ...] = (
    DailyCheck(
        "high_low_consistent",
        "High >= max(open, close) and low <= min(open, close) on every bar.",
        True,
        lambda s: high_low_consistent(s.bars),
    ),
    DailyCheck("prices_positive", "Every open, high, low and close > 0.", True, lambda s: prices_positive(s.bars)),
    DailyCheck(
        "volume_not_negative", "Volume >= 0 where present.", True, lambda s: volume_not_negative(s.bars)
    ),
    DailyCheck(
        "dates_unique_and_increasing",
        "Each date once, in increasing order.",
        True,
        lambda s: dates_unique_and_increasing(s.bars),
    ),
    DailyCheck(
        "ends_at_session",
        "The last bar is the partition's session: an older one is stale data.",
        True,
        lambda s: ends_at_session(s.bars, s.session),
    ),
    DailyCheck(
        "no_missing_sessions",
        "No session of the symbol's exchange calendar is missing between its first and last bar.",
        False,
        lambda s: no_missing_sessions(s.bars, s.calendar),
    ),
    DailyCheck(
        "no_unexplained_jumps",
        "No close moves beyond the `quality` resource's max_daily_move, except where a detected "
        "adjustment (split) takes effect.",
        False,
        lambda s: no_unexplained_jumps(
            s.bars,
            s.quality.max_daily_move,
            [] if s.adjustment is None or s.adjustment.effective_date is None else [s.adjustment.effective_date],
        ),
    ),
    DailyCheck(
        "close_not_repeated",
        "No close repeated on the `quality` resource's stale_sessions bars in a row (a stale feed).",
        False,
        lambda s: close_not_repeated(s.bars, s.quality.stale_sessions),
    ),
)

_RESAMPLED_CHECKS: dict[str, str] = {
    "agrees_with_daily": "Each bar is its period's daily bars: first open, highest high, lowest "
    "low, last close, summed volume; no daily bar left out.",
    "incomplete_flag_right": "Only the last bar, and only when its period has sessions to come, "
    "is flagged incomplete.",
}


_SEVERITIES: dict[tuple[str, str], dg.AssetCheckSeverity] = {}
"""Severity of a failure per (asset, check): `ERROR` for the blocking and the resampled checks,
`WARN` for the daily checks that only warn."""


def _spec(asset: str, name: str, description: str, severity: dg.AssetCheckSeverity) -> dg.AssetCheckSpec:
    _SEVERITIES[asset, name] = severity
    with warnings.catch_warnings():
        # Partitioned checks are a preview in dagster 1.13 (see the module docstring): said once
        # here rather than on every load of the code location.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            partitions_def=bars_partitions,
            metadata={"severity": severity.value},
        )


DAILY_CHECK_SPECS = [
    _spec(
        "daily_bars",
        check.name,
        check.description
        + (" Blocks the partition's weekly and monthly bars." if check.blocking else " Warns only."),
        dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
    )
    for check in DAILY_CHECKS
]


def resampled_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        _spec(asset, name, description, dg.AssetCheckSeverity.ERROR)
        for name, description in _RESAMPLED_CHECKS.items()
    ]


# --- Running the checks ---------------------------------------------------------------------------


def daily_findings(
    frames: Mapping[str, pd.DataFrame],
    quality: DataQualityResource | None,
    adjustments: Mapping[str, Adjustment | None],
    checks: Iterable[DailyCheck] = DAILY_CHECKS,
) -> dict[str, dict[str, Finding]]:
    """`{partition key: {check name: finding}}` of the daily snapshots."""
    checks = list(checks)
    findings = {}
    for key, bars in frames.items():
        dims = dimensions(key, bars_partitions)
        snapshot = Snapshot(bars, dims["symbol"], pd.Timestamp(dims["date"]), quality, adjustments.get(key))
        findings[key] = {check.name: check.rule(snapshot) for check in checks}
    return findings


def resampled_findings(
    daily: pd.DataFrame, bars: pd.DataFrame, period: Period, key: str
) -> dict[str, Finding]:
    dims = dimensions(key, bars_partitions)
    session = pd.Timestamp(dims["date"])
    return {
        "agrees_with_daily": resampled_agree_with_daily(daily, bars, period),
        "incomplete_flag_right": incomplete_flag_right(bars, period, session, calendar_for_symbol(dims["symbol"])),
    }


def blocked_partitions(daily: Mapping[str, pd.DataFrame]) -> dict[str, list[str]]:
    """Partitions whose daily snapshot fails a blocking check, with a line per failed check."""
    blocking = [check for check in DAILY_CHECKS if check.blocking]
    return {
        key: [f"{name}: {finding.description}" for name, finding in by_check.items() if not finding.passed]
        for key, by_check in daily_findings(daily, None, {}, blocking).items()
        if not all(finding.passed for finding in by_check.values())
    }


def check_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The (empty) outputs Dagster expects of a step for each of its selected checks."""
    selected = context.selected_asset_check_keys
    for output_name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key in selected:
            yield dg.Output(None, output_name=output_name)


def check_evaluations(
    context: dg.AssetExecutionContext,
    findings: Mapping[str, Mapping[str, Finding]],
    *,
    recorded: bool = True,
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per selected check and partition.

    When the step's materializations are `recorded` (after its output), each result points at its
    partition's latest materialization, read in one query; before that (a failing step's events
    are stored when it ends) the latest one would be an older run's, so none is named.
    """
    selected = {key.name for key in context.selected_asset_check_keys}
    targets = _latest_materializations(context, list(findings)) if recorded else {}
    evaluations = []
    for key, by_check in findings.items():
        for name, finding in by_check.items():
            if name not in selected:
                continue
            evaluations.append(
                dg.AssetCheckEvaluation(
                    asset_key=context.asset_key,
                    check_name=name,
                    passed=finding.passed,
                    partition=key,
                    description=finding.description,
                    metadata=_finding_metadata(finding),
                    severity=_SEVERITIES[context.asset_key.path[-1], name],
                    target_materialization_data=targets.get(key),
                )
            )
    return evaluations


def _finding_metadata(finding: Finding) -> dict[str, dg.MetadataValue]:
    metadata = {
        "offending_count": dg.MetadataValue.int(len(finding.dates)),
        "offending_dates": dg.MetadataValue.json([f"{day:%Y-%m-%d}" for day in finding.dates[:_LISTED_DATES]]),
    }
    if finding.dates:
        metadata["first_offending_date"] = dg.MetadataValue.text(f"{finding.dates[0]:%Y-%m-%d}")
    return metadata


def _latest_materializations(
    context: dg.AssetExecutionContext, keys: list[str]
) -> dict[str, "dg.AssetCheckEvaluationTargetMaterializationData"]:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    if not keys:
        return {}
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=keys), limit=len(keys)
    ).records
    latest: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for record in records:  # newest first
        partition = record.partition_key
        if partition is not None and partition not in latest:
            latest[partition] = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
    return latest
