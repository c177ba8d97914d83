"""`close_failure_alerts`: one alert per failed composition or close run, sent to the webhook.

A close run fails when a symbol could not be fetched, when a snapshot breaks a blocking check (the
step stores everything else, then fails naming the refused partitions), or when a run worker dies
(run monitoring fails it). Each of those ends in one failed run, so one alert per failed run is one
per failure, and a blocking check says so in the alert's kind.
"""

import dagster as dg

from market_assets.defs.alerts.resources import AlertsResource
from market_assets.defs.bars.jobs import close_jobs
from market_assets.defs.bars.planning import run_symbols
from market_assets.defs.compositions.jobs import compositions_job
from market_assets.defs.runs import INDEX_TAG, PARTITION_RANGE_START_TAG, SESSION_TAG, step_error_message
from market_assets.domain.alerts import Alert, symbols_named

_PARTITION_TAG = "dagster/partition"
_BLOCKING = "fail a blocking check"
"""How a bars step's failure says that snapshots broke a blocking check (`failure.py`)."""


@dg.run_failure_sensor(
    monitored_jobs=[*close_jobs.values(), compositions_job],
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def close_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> dg.SkipReason | None:
    """Tell the webhook which index, session and symbols failed, what went wrong, and where the run is."""
    if not alerts.enabled:
        return dg.SkipReason("no webhook configured (MARKET_ASSETS_ALERT_WEBHOOK_URL): nobody to tell")
    run = context.dagster_run
    errors = [event.step_failure_data.error for event in context.get_step_failure_events()]
    messages = [step_error_message(error) for error in errors if error is not None]
    what = "\n".join(messages) or context.failure_event.message
    loaded = run_symbols(context.instance, run)
    alerts.send(
        Alert(
            kind=_kind(run, what),
            index=run.tags.get(INDEX_TAG) or _from_partition(run, "index"),
            session=run.tags.get(SESSION_TAG) or _from_partition(run, "date"),
            symbols=symbols_named(what, loaded) or tuple(loaded),
            what=what,
            link=alerts.run_link(run.run_id),
        )
    )
    return None


def _kind(run: dg.DagsterRun, what: str) -> str:
    if run.job_name == compositions_job.name:
        return "composition run failed"
    return "blocking check failed" if _BLOCKING in what else "close run failed"


def _from_partition(run: dg.DagsterRun, dimension: str) -> str:
    """The date or index of a composition run, from its `<date>|<index>` partition (or range start)."""
    key = run.tags.get(_PARTITION_TAG) or run.tags.get(PARTITION_RANGE_START_TAG) or "?|?"
    date, _, index = key.partition("|")
    return {"date": date, "index": index}[dimension]
