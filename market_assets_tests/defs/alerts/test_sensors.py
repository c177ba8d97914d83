"""`close_failure_alerts`: one message per failed run to a webhook on loopback, none for a success,
evaluated as the daemon evaluates it."""

import json

import dagster as dg
import pandas as pd
import pytest

from market_assets import definitions
from market_assets.cli.close import CloseFailed, close_index
from market_assets.defs.alerts.resources import AlertNotSent, AlertsResource
from market_assets.defs.alerts.sensors import close_failure_alerts
from market_assets.domain.alerts import Alert
from market_assets.settings import ALERT_WEBHOOK_URL, STOOQ_API_KEY, UI_URL
from market_assets_tests.universe import last_session
from market_assets_tests.webhook import webhook_receiver
from stooq_server import Fault, FaultKind, generate_synthetic
from stooq_server.synthetic import SyntheticUniverse

API_KEY = "k3y-that-must-not-leak"
UI = "http://dagster.example:3000"


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list, str | None]:
    """One tick of the sensor as the daemon runs it: the run events after `cursor`."""
    defs = definitions.defs()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"alerts": defs.resources["alerts"]}
    )
    result = close_failure_alerts.evaluate_tick(context)
    return result, result.cursor


@pytest.fixture
def universe(tmp_path) -> SyntheticUniverse:
    """A small universe of its own, since a test edits its files."""
    return generate_synthetic(tmp_path / "stooq", first_session="2024-01-02", sizes={"DJI": 6, "NDX": 1, "HSI": 1})


@pytest.fixture
def alerting(platform_factory, server_factory, universe):
    with webhook_receiver() as receiver:
        server = server_factory(universe.data_dir, api_key=API_KEY)
        platform = platform_factory(
            server=server,
            **{STOOQ_API_KEY.env_var: API_KEY, ALERT_WEBHOOK_URL.env_var: receiver.url, UI_URL.env_var: UI},
        )
        yield platform, receiver


def test_a_failed_close_sends_one_message_and_a_successful_one_none(alerting, universe):
    platform, receiver = alerting
    instance, server = platform.instance, platform.server
    session = last_session(universe, "XNYS")
    members = universe.members("DJI", pd.Timestamp(session))
    _, cursor = _tick(instance, None)  # the first tick starts from now, as the daemon's does

    close_index(instance, "NDX", session)  # succeeds
    _, cursor = _tick(instance, cursor)
    assert receiver.messages == []

    broken = members[3]
    server.inject(Fault(FaultKind.NO_DATA, symbols={broken}))
    with pytest.raises(CloseFailed):
        close_index(instance, "DJI", session, force=True)
    _, cursor = _tick(instance, cursor)
    _, cursor = _tick(instance, cursor)  # a second tick does not send it again

    (message,) = receiver.messages
    (failed,) = instance.get_runs(dg.RunsFilter(job_name="dji_close", statuses=[dg.DagsterRunStatus.FAILURE]))
    assert message["text"].startswith(f"DJI {session}: close run failed: ")
    fields = {field["text"].split("\n")[0]: field["text"].split("\n")[1] for field in message["blocks"][1]["fields"]}
    assert fields == {"*Index*": "DJI", "*Session*": session, "*Symbols*": broken}
    assert f"{broken}: Stooq answered 'No data'" in message["blocks"][2]["text"]["text"]
    assert f"<{UI}/runs/{failed.run_id}|" in message["blocks"][3]["text"]["text"]
    assert API_KEY not in json.dumps(message)


def test_a_blocking_check_says_so(alerting, universe):
    platform, receiver = alerting
    instance, server = platform.instance, platform.server
    session = last_session(universe, "XNYS")
    members = universe.members("DJI", pd.Timestamp(session))
    _, cursor = _tick(instance, None)
    inverted = members[1]
    path = universe.data_dir / "d" / f"{inverted.lower()}.csv"
    bars = pd.read_csv(path)
    bars.loc[bars.index[-2], ["High", "Low"]] = bars.loc[bars.index[-2], ["Low", "High"]].to_numpy()
    bars.to_csv(path, index=False, lineterminator="\r\n")
    server.reload()

    with pytest.raises(CloseFailed):
        close_index(instance, "DJI", session)
    _tick(instance, cursor)

    (message,) = receiver.messages
    assert message["blocks"][0]["text"]["text"] == f"DJI {session}: blocking check failed"
    assert "high_low_consistent" in message["blocks"][2]["text"]["text"]
    assert inverted in message["blocks"][1]["fields"][2]["text"]


def test_a_webhook_that_refuses_fails_naming_its_host_not_its_secret(alerting):
    _, receiver = alerting
    alerts = AlertsResource(webhook_url=receiver.url, ui_url=UI)
    receiver.status = 500

    with pytest.raises(AlertNotSent) as refused:
        alerts.send(Alert("close run failed", "DJI", "2026-12-02", ("AAPL.US",), "what", f"{UI}/runs/x"))

    host = receiver.url.split("/services")[0]
    assert f"not sent to {host}/***: 500 Server Error" in str(refused.value)
    assert "s3cret-hook" not in str(refused.value)
