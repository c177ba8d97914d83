"""`close_failure_alerts`: one alert per failed composition, close or verification run, sent to
the webhook; `freshness_alerts`: one when an exchange's bars turn late by their freshness policy.
Why one alert per failed run: docs/design.md#alerts.
"""

import json

import dagster as dg
import pandas as pd

from market_assets.dagster_internals import FreshnessState, freshness_states
from market_assets.defs.alerts.resources import AlertsResource
from market_assets.defs.bars.jobs import close_jobs, verify_bars
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.defs.bars.planning import materialized_symbols, run_symbols
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.partitions import bars_dimensions
from market_assets.defs.runs import (
    INDEX_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    SESSION_TAG,
    WILL_RETRY_TAG,
    step_error_message,
)
from market_assets.domain.alerts import Alert, symbols_named
from market_assets.domain.exchange_sessions import latest_closed_session
from market_assets.lake.compositions import composition_for, constituents
from market_assets.lake.datasets import BARS
from market_assets.lake.resource import DataLakeResource
from market_assets.lake.store import ParquetStore
from market_assets.sources.indices import followed_exchanges, indices_on

_BLOCKING = "fail a blocking check"
"""How a bars step's failure says that snapshots broke a blocking check (`failure.py`)."""


@dg.run_failure_sensor(
    monitored_jobs=[*close_jobs.values(), compositions_job, verify_bars],
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def close_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> dg.SkipReason | None:
    """Tell the webhook which index, session and symbols failed, what went wrong, and where the run is."""
    if not alerts.enabled:
        return dg.SkipReason("no webhook configured (MARKET_ASSETS_ALERT_WEBHOOK_URL): nobody to tell")
    run = context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return dg.SkipReason(f"run {run.run_id} failed and will be retried: its retry is told of if it fails")
    errors = [event.step_failure_data.error for event in context.get_step_failure_events()]
    messages = [step_error_message(error) for error in errors if error is not None]
    what = "\n".join(messages) or context.failure_event.message
    loaded = run_symbols(context.instance, run) or _verified_symbols(context)
    verified = run.run_config.get("ops", {}).get("verify_bars_files", {}).get("config", {})
    alerts.send(
        Alert(
            kind=_kind(run, what),
            index=run.tags.get(INDEX_TAG) or verified.get("index") or _from_partition(run, "index"),
            session=run.tags.get(SESSION_TAG) or verified.get("session") or _from_partition(run, "date"),
            symbols=symbols_named(what, loaded) or tuple(loaded),
            what=what,
            link=alerts.run_link(run.run_id),
        )
    )
    return None


def _kind(run: dg.DagsterRun, what: str) -> str:
    if run.job_name == compositions_job.name:
        return "composition run failed"
    if run.job_name == verify_bars.name:
        return "damaged files found"
    return "blocking check failed" if _BLOCKING in what else "close run failed"


def _verified_symbols(context: dg.RunFailureSensorContext) -> list[str]:
    """The symbols of the damaged partitions a `verify_bars` run names in its failure's metadata."""
    symbols = []
    for event in context.get_step_failure_events():
        failure = event.step_failure_data.user_failure_data
        damaged = failure.metadata.get("damaged") if failure else None
        symbols += [bars_dimensions(item["partition"])["symbol"] for item in (damaged.value if damaged else [])]
    return list(dict.fromkeys(symbols))


def _from_partition(run: dg.DagsterRun, dimension: str) -> str:
    """The date or index of a composition run, from its `<date>|<index>` partition (or range start)."""
    key = run.tags.get(PARTITION_TAG) or run.tags.get(PARTITION_RANGE_START_TAG) or "?|?"
    date, _, index = key.partition("|")
    return {"date": date, "index": index}[dimension]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def freshness_alerts(context: dg.SensorEvaluationContext, alerts: AlertsResource, lake: DataLakeResource) -> dg.SkipReason:
    """Tell the webhook when an exchange's bars turn late by their freshness policy
    (`market_assets.defs.bars.freshness`): once per asset and turn, naming the indices of the
    exchange, the session due and the symbols whose bars of it are not stored. Reads the state the
    daemon last recorded (cursor: `{asset: when the state it alerted of began}`).
    """
    if not alerts.enabled:
        return dg.SkipReason("no webhook configured (MARKET_ASSETS_ALERT_WEBHOOK_URL): nobody to tell")
    alerted = json.loads(context.cursor or "{}")
    keys = {bars_asset_key(code, name): code for code in followed_exchanges() for name in BARS}
    told = []
    for key, (state, since) in freshness_states(context.instance, list(keys)).items():
        name = key.to_user_string()
        if state != FreshnessState.FAIL or alerted.get(name, 0) >= since:
            continue
        code = keys[key]
        session = f"{latest_closed_session(code, pd.Timestamp.now(tz='UTC')):%Y-%m-%d}"
        members = _members(lake.store, code, session)
        stored = materialized_symbols(context.instance, [key], session, members)
        late = [symbol for symbol in members if symbol not in stored]
        alerts.send(
            Alert(
                kind="bars late",
                index=", ".join(indices_on(code)),
                session=session,
                symbols=tuple(late),
                what=f"{name} is late by its freshness policy: {len(late)} symbols have no bars of {session} stored",
                link=alerts.asset_link(key),
            )
        )
        alerted[name] = since
        told.append(name)
    context.update_cursor(json.dumps(alerted, sort_keys=True))
    return dg.SkipReason(f"told the webhook that {', '.join(told)} are late" if told else "no bars late since the last alert")


def _members(store: ParquetStore, code: str, session: str) -> list[str]:
    """The symbols of exchange `code`'s indices, by each one's composition that applies to `session`."""
    members: dict[str, None] = {}
    for index in indices_on(code):
        listed = composition_for(store, index, session)
        if listed is not None:
            members.update(dict.fromkeys(constituents(store, listed)))
    return list(members)
