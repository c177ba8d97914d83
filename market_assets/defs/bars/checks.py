"""Asset checks of the bars: which rules of `market_assets.domain.quality_rules` run on which asset, and which block.

The checks run inside the step that materializes the assets (the bars step's `check_specs`
for `daily_bars`, `weekly_bars`, `monthly_bars`), on the frames the step writes, and report one result per
(session, symbol) partition naming the rules that failed and their offending dates.

| asset | check | rules | on failure |
|---|---|---|---|
| `daily_bars` | `valid_bars` | `high_low_consistent`, `prices_positive`, `volume_not_negative`, `dates_unique_and_increasing`, `ends_at_session` | blocks |
| `daily_bars` | `plausible_history` | `no_missing_sessions`, `no_unexplained_jumps`, `close_not_repeated` | warns |
| `weekly_bars`, `monthly_bars` | `matches_daily_bars` | `agrees_with_daily`, `incomplete_flag_right` | error |

**Which rules block, and why.** A rule blocks when weekly or monthly bars built on a failing
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

**What is judged.** The warning rules judge what a snapshot brings against the symbol's previous
snapshot (`market_assets.domain.judged_rows`): the bars added after its last bar, or, when the past
was rewritten, the bars from the first changed one on; a symbol's first snapshot is judged whole,
once. Each rule sees the bars before the new ones that it needs (`Rule.context`). Judged whole
every session, real histories would repeat decades-old findings forever (a real crash, adjusted
prices rounded into repeated closes, a session Stooq never had), and a warning always there is
one nobody looks at. The blocking rules judge the whole snapshot: the weekly and monthly bars are
resampled from all of it, so a bad bar of any age would make them wrong; they take milliseconds,
and real histories pass them, so they do not warn forever. Each daily result says in its metadata
which bars it covered: `judged` (what they are), `judged_from`, `judged_to`, `judged_rows` (the
widest of its rules' windows).

**Blocking per partition.** A close run covers hundreds of symbols in one step. Dagster 1.13's
`blocking=True` acts per step: one failing symbol would fail the step and skip the weekly and
monthly bars of every symbol in the run. So the specs are not `blocking` in Dagster's sense;
instead the bars step builds no weekly and monthly bars for a partition whose daily snapshot
breaks a blocking rule (`blocking_failures`), stores and records everything else, and fails
naming the refused partitions. When weekly or monthly bars are materialized without the daily
ones (from the UI), the blocking rules are applied to the stored snapshot rather than read back
from recorded results: they are pure and take milliseconds, and the gate then depends on the data
only, not on which runs recorded what.

**Partitioned results.** The specs carry the bars' `partitions_def` (a preview feature of dagster
1.13, hence its `PreviewWarning`), and each result names its partition. `AssetCheckResult` only
takes the partition of a single-partition run, so a step over a range of partitions (a close run)
reports `AssetCheckEvaluation`s with their partition set (`check_evaluations`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import dagster as dg
import pandas as pd

from market_assets.dagster_internals import AssetCheckEvaluationTargetMaterializationData
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
    """The thresholds of the warning checks (the blocking ones take none)."""
    adjustment: Adjustment | None = None


@dataclass(frozen=True)
class Rule:
    """One thing a check verifies, on one partition's daily snapshot."""

    name: str
    verify: Callable[[Snapshot], Finding]
    context: Callable[[Snapshot], int] | None = None
    """The bars before a snapshot's new ones that the rule judges with them; None: the rule judges
    the whole snapshot (see the module docstring)."""


@dataclass(frozen=True)
class BarsCheck:
    """An asset check: rules of one severity, with one result per partition naming what failed.

    Rules are grouped by what their failure means (block, warn) rather than given a check each: a
    close run records one result per check and partition, and each result is an event Dagster
    stores, so eight checks of their own would make the checks most of what a close run writes.
    """

    name: str
    description: str
    severity: dg.AssetCheckSeverity
    rules: tuple[str, ...]


BLOCKING_RULES: tuple[Rule, ...] = (
    Rule("high_low_consistent", lambda s: high_low_consistent(s.bars)),
    Rule("prices_positive", lambda s: prices_positive(s.bars)),
    Rule("volume_not_negative", lambda s: volume_not_negative(s.bars)),
    Rule("dates_unique_and_increasing", lambda s: dates_unique_and_increasing(s.bars)),
    Rule("ends_at_session", lambda s: ends_at_session(s.bars, s.session)),
)
"""Rules whose failure keeps a partition's weekly and monthly bars from being built."""

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
"""Rules whose failure only warns, each judging a snapshot's new bars with the `context` before them."""

VALID_BARS = BarsCheck(
    "valid_bars",
    "Every bar of the whole snapshot is sound, and the snapshot is the session's: the weekly and "
    "monthly bars are resampled from all of it. high_low_consistent: high >= max(open, "
    "close) and low <= min(open, close); prices_positive: open, high, low, close > 0; "
    "volume_not_negative: volume >= 0 where present; dates_unique_and_increasing: each date once, "
    "in increasing order; ends_at_session: the last bar is the partition's session (an older one "
    "is stale data). Blocks the partition's weekly and monthly bars.",
    dg.AssetCheckSeverity.ERROR,
    tuple(rule.name for rule in BLOCKING_RULES),
)

PLAUSIBLE_HISTORY = BarsCheck(
    "plausible_history",
    "What the snapshot brings looks like a live market's. Judged: the bars added after the symbol's "
    "previous snapshot, or from the first changed bar on when the past was rewritten, or the whole "
    "history of a symbol's first snapshot (the metadata's judged, judged_from, judged_to, "
    "judged_rows). no_missing_sessions: no session of the exchange calendar missing between the "
    "last old bar and the newest; no_unexplained_jumps: no new close moves from the close before it "
    "beyond the `quality` resource's max_daily_move, except where a detected split takes effect; "
    "close_not_repeated: no run of stale_sessions bars with the same close that takes in a new bar "
    "(a stale feed). Warns only.",
    dg.AssetCheckSeverity.WARN,
    tuple(rule.name for rule in WARNING_RULES),
)

MATCHES_DAILY = BarsCheck(
    "matches_daily_bars",
    "agrees_with_daily: each bar is its period's daily bars (first open, highest high, lowest "
    "low, last close, summed volume, its last session and number of sessions, dated by the period's "
    "last calendar day; no daily bar left out); "
    "incomplete_flag_right: only the last bar, and only when its period has sessions to come, is "
    "flagged incomplete.",
    dg.AssetCheckSeverity.ERROR,
    ("agrees_with_daily", "incomplete_flag_right"),
)

CHECKS: dict[str, tuple[BarsCheck, ...]] = {
    "daily_bars": (VALID_BARS, PLAUSIBLE_HISTORY),
    "weekly_bars": (MATCHES_DAILY,),
    "monthly_bars": (MATCHES_DAILY,),
}


def check_specs(asset: dg.AssetKey, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """The asset checks of the bars asset `asset`, partitioned like it (`partitions_def`)."""
    with warnings.catch_warnings():
        # Partitioned checks are a preview in dagster 1.13 (see the module docstring): said once
        # here rather than on every load of the code location.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                check.name,
                asset=asset,
                description=check.description,
                partitions_def=partitions_def,
                metadata={"severity": check.severity.value, "rules": ", ".join(check.rules)},
            )
            for check in CHECKS[asset.path[-1]]
        ]


# --- Running the checks ---------------------------------------------------------------------------


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
    findings = {}
    for rule in rules:
        if rule.context is None:
            judged, window = Judged.of(bars, "the whole snapshot"), snapshot
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
    return [
        f"{rule.name}: {findings[rule.name].description}" for rule in BLOCKING_RULES if not findings[rule.name].passed
    ]


def check_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The (empty) outputs Dagster expects of a step for each of its selected checks."""
    selected = context.selected_asset_check_keys
    for output_name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key in selected:
            yield dg.Output(None, output_name=output_name)


def check_evaluations(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    findings: Mapping[str, Findings],
    records: Mapping[str, dg.EventLogRecord],
) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per selected check of `asset_key` and partition, from the partition's rule
    findings, once the step's materializations of those partitions are stored: each result points
    at its partition's latest materialization (`records`, see `latest_materializations`), the one
    it checked."""
    selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == asset_key}
    checks = [check for check in CHECKS[asset_key.path[-1]] if check.name in selected]
    targets = {key: check_target(record) for key, record in records.items()}
    return [
        _evaluation(asset_key, check, key, by_rule, targets.get(key))
        for key, by_rule in findings.items()
        for check in checks
    ]


def _evaluation(
    asset_key: dg.AssetKey,
    check: BarsCheck,
    partition: str,
    by_rule: Findings,
    target: AssetCheckEvaluationTargetMaterializationData | None,
) -> dg.AssetCheckEvaluation:
    """A check's result on a partition: failed when any of its rules is, saying which and where.

    Metadata: `failed_rules`, `offending_dates` (`{rule: [dates]}` of the failed rules, the first
    `_LISTED_DATES` of each), `offending_count` and `first_offending_date` over all of them; for
    daily bars, which bars the result covered (`_judged_metadata`).
    """
    failed = {rule: by_rule[rule] for rule in check.rules if not by_rule[rule].passed}
    dates = sorted(day for finding in failed.values() for day in finding.dates)
    metadata = {
        "failed_rules": dg.MetadataValue.text(", ".join(failed) or "none"),
        "offending_count": dg.MetadataValue.int(len(dates)),
        "offending_dates": dg.MetadataValue.json(
            {rule: [f"{day:%Y-%m-%d}" for day in finding.dates[:_LISTED_DATES]] for rule, finding in failed.items()}
        ),
    }
    if dates:
        metadata["first_offending_date"] = dg.MetadataValue.text(f"{dates[0]:%Y-%m-%d}")
    metadata.update(_judged_metadata([by_rule[rule].judged for rule in check.rules if by_rule[rule].judged]))
    description = (
        "; ".join(f"{rule}: {finding.description}" for rule, finding in failed.items())
        if failed
        else f"all {len(check.rules)} rules hold: {', '.join(check.rules)}"
    )
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=check.name,
        passed=not failed,
        partition=partition,
        description=description,
        metadata=metadata,
        severity=check.severity,
        target_materialization_data=target,
    )


def _judged_metadata(judged: list[Judged]) -> dict[str, dg.MetadataValue]:
    """Which bars a result covered: the widest of its rules' windows (they all end at the newest
    bar), what they are, and from and to which date."""
    if not judged:
        return {}
    widest = max(judged, key=lambda window: window.rows)
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
