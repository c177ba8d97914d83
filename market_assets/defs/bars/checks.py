"""`valid_bars`, the one asset check of each bars asset: its rules (`CHECKS`), which of them are
errors (a failed daily one blocks the partition's weekly and monthly bars) or warnings, and its
result on a partition. The rules: README.md#data-quality; why: docs/design.md#data-quality-checks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import dagster as dg
import pandas as pd

from market_assets.dagster_internals import AssetCheckEvaluationTargetMaterializationData
from market_assets.defs.bars.keys import PERIODS
from market_assets.defs.bars.resources import DataQualityResource
from market_assets.defs.bars.targets import Target
from market_assets.domain.adjustment_detection import Adjustment
from market_assets.domain.candles import Period
from market_assets.domain.judged_rows import Judged, NewRows, judged_rows, new_rows
from market_assets.domain.quality_rules import (
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
from market_assets.lake.datasets import DAILY_BARS

VALID_BARS = "valid_bars"
"""The name of each bars asset's check."""

FILE_INTACT = "file_intact"
"""The rule every bars asset's check starts with: its file reads back as what was written
(`market_assets.defs.bars.integrity`)."""

_LISTED_DATES = 100
"""Offending dates listed in a result's metadata (the count is always complete)."""


@dataclass(frozen=True)
class Snapshot:
    """What a daily rule looks at: the bars of one partition it judges and what is known about them."""

    bars: pd.DataFrame
    calendar: str
    """The exchange_calendars code of the symbol's exchange."""
    session: pd.Timestamp
    quality: DataQualityResource | None
    """The thresholds of the warning rules (the error rules take none)."""
    adjustment: Adjustment | None = None


@dataclass(frozen=True)
class Rule:
    """One thing a daily check verifies on one partition's snapshot."""

    name: str
    verify: Callable[[Snapshot], Finding]
    context: Callable[[Snapshot], int] | None = None
    """The bars before a snapshot's new ones that the rule judges with them; None: the rule judges
    the whole snapshot."""


BLOCKING_RULES: tuple[Rule, ...] = (
    Rule("high_low_consistent", lambda s: high_low_consistent(s.bars)),
    Rule("prices_positive", lambda s: prices_positive(s.bars)),
    Rule("volume_not_negative", lambda s: volume_not_negative(s.bars)),
    Rule("dates_unique_and_increasing", lambda s: dates_unique_and_increasing(s.bars)),
    Rule("ends_at_session", lambda s: ends_at_session(s.bars, s.session)),
)
"""Rules of the whole daily snapshot whose failure keeps a partition's weekly and monthly bars from
being built."""

WARNING_RULES: tuple[Rule, ...] = (
    # A session missing after the last old bar lies between it and the first new one.
    Rule("no_missing_sessions", lambda s: no_missing_sessions(s.bars, s.calendar), lambda s: 1),
    # A new close moves from the close before it.
    Rule(
        "no_unexplained_jumps",
        lambda s: no_unexplained_jumps(
            s.bars,
            s.quality.max_daily_move,
            [] if s.adjustment is None or s.adjustment.effective_date is None else [s.adjustment.effective_date],
        ),
        lambda s: 1,
    ),
    # A new bar can complete a stale run begun by up to stale_sessions - 1 old ones.
    Rule(
        "close_not_repeated",
        lambda s: close_not_repeated(s.bars, s.quality.stale_sessions),
        lambda s: s.quality.stale_sessions - 1,
    ),
)
"""Rules whose failure only warns, each judging what a snapshot brings, with the `context` before it."""


@dataclass(frozen=True)
class BarsCheck:
    """The `valid_bars` check of one bars asset: its rules by what their failure means."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    blocks: str | None
    """What a failed error rule stops from being built; None when nothing is built from the asset."""
    description: str

    @property
    def rules(self) -> tuple[str, ...]:
        return (*self.errors, *self.warnings)


_FILE_INTACT = (
    "file_intact: the partition's file reads back as what was written (its materialization's "
    "fingerprint), checked after each write and by `python -m market_assets verify`."
)

CHECKS: dict[str, BarsCheck] = {
    DAILY_BARS: BarsCheck(
        errors=(FILE_INTACT, *(rule.name for rule in BLOCKING_RULES)),
        warnings=tuple(rule.name for rule in WARNING_RULES),
        blocks="the partition's weekly_bars and monthly_bars are not built",
        description=(
            "Errors, judged on the whole snapshot, which block the partition's weekly and monthly "
            f"bars: {_FILE_INTACT} high_low_consistent: high >= max(open, close) and low <= "
            "min(open, close); prices_positive: open, high, low, close > 0; volume_not_negative: "
            "volume >= 0 where present; dates_unique_and_increasing: each date once, in increasing "
            "order; ends_at_session: the last bar is the partition's session (an older one is "
            "stale data). Warnings, judged on what the snapshot brings (the bars after the "
            "symbol's previous snapshot, from the first changed bar on when the past was "
            "rewritten, the whole history of a first snapshot): no_missing_sessions: no session of "
            "the exchange calendar missing; no_unexplained_jumps: no close moves beyond the "
            "`quality` resource's max_daily_move, except where a detected split takes effect; "
            "close_not_repeated: no run of stale_sessions equal closes that takes in a new bar."
        ),
    ),
    **{
        asset: BarsCheck(
            errors=(FILE_INTACT, "agrees_with_daily", "incomplete_flag_right"),
            warnings=(),
            blocks=None,
            description=(
                f"{_FILE_INTACT} agrees_with_daily: each bar is its period's daily bars (first "
                "open, highest high, lowest low, last close, summed volume, its last session and "
                "number of sessions, dated by the period's last calendar day; no daily bar left "
                "out); incomplete_flag_right: only the last bar, and only when its period has "
                "sessions to come, is flagged incomplete."
            ),
        )
        for asset in PERIODS
    },
}


def check_spec(asset: dg.AssetKey, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    """The `valid_bars` check of the bars asset `asset`, partitioned like it (`partitions_def`)."""
    check = CHECKS[asset.path[-1]]
    with warnings.catch_warnings():
        # Partitioned checks are a preview in dagster 1.13: said once here rather than on every
        # load of the code location.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            VALID_BARS,
            asset=asset,
            description=check.description,
            partitions_def=partitions_def,
            # Said to the UI: the step itself keeps what a failed error rule blocks from being built.
            blocking=check.blocks is not None,
            metadata={
                "error_rules": ", ".join(check.errors),
                "warning_rules": ", ".join(check.warnings) or "none",
                "an error blocks": check.blocks or "nothing",
            },
        )


# --- Judging a partition ------------------------------------------------------------------------


Findings = dict[str, Finding]
"""`{rule name: finding}` of one partition."""


def daily_findings(
    target: Target,
    bars: pd.DataFrame,
    previous: pd.DataFrame | None,
    quality: DataQualityResource | None,
    adjustment: Adjustment | None,
    rules: Iterable[Rule] = (*BLOCKING_RULES, *WARNING_RULES),
    new: NewRows | None = None,
) -> Findings:
    """The findings of the daily snapshot `bars` of the partition `target`, each saying which bars
    it judged: the whole snapshot, or what it brings against the symbol's `previous` stored
    snapshot (None for its first) with the rule's context; `new` when the caller knows it already
    (an incremental download compared the past)."""
    snapshot = Snapshot(bars, target.exchange, target.session, quality, adjustment)
    new = new if new is not None else new_rows(previous, bars)
    whole = Judged.of(bars, "the whole snapshot")
    findings = {}
    for rule in rules:
        if rule.context is None:
            judged, window = whole, snapshot
        else:
            bars_judged, judged = judged_rows(bars, new, rule.context(snapshot))
            window = replace(snapshot, bars=bars_judged)
        findings[rule.name] = replace(rule.verify(window), judged=judged)
    return findings


def resampled_findings(target: Target, daily: pd.DataFrame, bars: pd.DataFrame, period: Period) -> Findings:
    """The findings of the `period`ly `bars` resampled from the daily snapshot `daily` of `target`."""
    return {
        "agrees_with_daily": resampled_agree_with_daily(daily, bars, period),
        "incomplete_flag_right": incomplete_flag_right(bars, period, target.session, target.exchange),
    }


def blocking_failures(findings: Findings) -> list[str]:
    """`rule: description` of each blocking rule that `findings`, of a daily snapshot, show broken."""
    return [f"{rule.name}: {findings[rule.name].description}" for rule in BLOCKING_RULES if not findings[rule.name].passed]


# --- Results ------------------------------------------------------------------------------------


def evaluation(
    asset_key: dg.AssetKey,
    partition: str,
    findings: Findings,
    target: AssetCheckEvaluationTargetMaterializationData | None,
    *,
    blocking: bool,
    extra: Mapping[str, dg.MetadataValue] | None = None,
) -> dg.AssetCheckEvaluation:
    """The `valid_bars` result of `asset_key` on `partition` from the findings of its rules judged,
    pointing at the materialization it checked (`target`). `blocking`: a failed error rule keeps
    what the check blocks from being built (in a close; not in `verify`). Metadata: `failed_rules`,
    `blocks`, `offending_dates` (the first `_LISTED_DATES` per rule), `offending_count`,
    `first_offending_date`, `extra`, and which bars the warnings judged."""
    check = CHECKS[asset_key.path[-1]]
    failed = {rule: findings[rule] for rule in check.rules if rule in findings and not findings[rule].passed}
    errors = [rule for rule in failed if rule in check.errors]
    metadata = {"failed_rules": dg.MetadataValue.text(", ".join(failed) or "none"), **(extra or {})}
    if failed:  # a result that passed says no more: every result is an event Dagster stores
        dates = sorted(day for finding in failed.values() for day in finding.dates)
        metadata["blocks"] = dg.MetadataValue.text(f"yes: {check.blocks}" if errors and blocking and check.blocks else "no")
        metadata["offending_count"] = dg.MetadataValue.int(len(dates))
        metadata["offending_dates"] = dg.MetadataValue.json(
            {rule: [f"{day:%Y-%m-%d}" for day in finding.dates[:_LISTED_DATES]] for rule, finding in failed.items()}
        )
        if dates:
            metadata["first_offending_date"] = dg.MetadataValue.text(f"{dates[0]:%Y-%m-%d}")
    metadata.update(_judged_metadata([findings[rule].judged for rule in check.warnings if rule in findings]))
    judged = [rule for rule in check.rules if rule in findings]
    description = (
        "; ".join(f"{rule}: {finding.description}" for rule, finding in failed.items())
        if failed
        else f"all {len(judged)} rules hold"
    )
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=VALID_BARS,
        passed=not failed,
        partition=partition,
        description=description,
        metadata=metadata,
        # A failure of warnings alone is a warning; a result that passed keeps the check's own.
        severity=dg.AssetCheckSeverity.WARN if failed and not errors else dg.AssetCheckSeverity.ERROR,
        target_materialization_data=target,
    )


def _judged_metadata(judged: list[Judged | None]) -> dict[str, dg.MetadataValue]:
    """Which bars the warnings covered: the widest of their windows (they all end at the newest
    bar), what they are, and from and to which date."""
    windows = [window for window in judged if window is not None]
    if not windows:
        return {}
    widest = max(windows, key=lambda window: window.rows)
    metadata = {
        "judged": dg.MetadataValue.text(widest.describe()),
        "judged_rows": dg.MetadataValue.int(widest.rows),
    }
    if widest.rows:
        metadata["judged_from"] = dg.MetadataValue.text(f"{widest.first:%Y-%m-%d}")
        metadata["judged_to"] = dg.MetadataValue.text(f"{widest.last:%Y-%m-%d}")
    return metadata


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: list[str]
) -> dict[str, dg.EventLogRecord]:
    """The latest materialization record of each partition of `keys` that has one, read newest
    first a page at a time until every partition is found or the records run out."""
    latest: dict[str, dg.EventLogRecord] = {}
    cursor = None
    while keys and len(latest) < len(keys):
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=len(keys), cursor=cursor
        )
        for record in page.records:  # newest first
            if record.partition_key is not None and record.partition_key not in latest:
                latest[record.partition_key] = record
        if not page.has_more:
            break
        cursor = page.cursor
    return latest


def check_target(record: dg.EventLogRecord) -> AssetCheckEvaluationTargetMaterializationData:
    """The pointer a check result carries to the materialization it checked (see
    `market_assets.dagster_internals`)."""
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
