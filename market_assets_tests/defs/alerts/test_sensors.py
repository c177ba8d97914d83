"""`close_failure_alerts`: one message per failed run to a webhook on loopback, none for a success,
evaluated as the daemon evaluates it."""

import json
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from market_assets import definitions
from market_assets.cli import main as cli
from market_assets.cli.close import CloseFailed, close_index
from market_assets.dagster_internals import FreshnessState, FreshnessStateChange
from market_assets.defs.alerts.resources import AlertNotSent, AlertsResource
from market_assets.defs.alerts.sensors import close_failure_alerts, freshness_alerts
from market_assets.defs.bars.keys import bars_asset_key
from market_assets.domain.alerts import Alert
from market_assets.domain.exchange_sessions import calendar
from market_assets.settings import ALERT_WEBHOOK_URL, STOOQ_API_KEY, UI_URL
from market_assets_tests.small_volume import fill, small_volume
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


def test_damaged_files_found_by_verify_say_which(alerting, universe):
    platform, receiver = alerting
    instance = platform.instance
    session = last_session(universe, "XNYS")
    members = universe.members("DJI", pd.Timestamp(session))
    close_index(instance, "DJI", session)
    _, cursor = _tick(instance, None)
    damaged = platform.store.file("daily_bars", f"{session}|{members[2]}")
    with open(damaged, "r+b") as handle:
        handle.truncate(100)

    assert cli(["verify", "DJI"]) == 1
    _tick(instance, cursor)

    (message,) = receiver.messages
    assert message["blocks"][0]["text"]["text"] == f"DJI {session}: damaged files found"
    fields = {field["text"].split("\n")[0]: field["text"].split("\n")[1] for field in message["blocks"][1]["fields"]}
    assert fields == {"*Index*": "DJI", "*Session*": session, "*Symbols*": members[2]}
    assert f"{damaged} is not readable parquet" in message["blocks"][2]["text"]["text"]


def test_a_full_data_root_says_which_file(alerting, universe, tmp_path):
    platform, receiver = alerting
    instance = platform.instance
    _, cursor = _tick(instance, None)
    lake = Path(platform.store.root)
    with small_volume(lake, 2 * 2**20):
        fill(lake, leave_bytes=150_000)
        with pytest.raises(CloseFailed):
            close_index(instance, "DJI", last_session(universe, "XNYS"))
        _tick(instance, cursor)

    (message,) = receiver.messages
    assert message["blocks"][0]["text"]["text"].endswith(": close run failed")
    assert f"cannot write {lake}/" in message["blocks"][2]["text"]["text"]
    assert "No space left on device" in message["blocks"][2]["text"]["text"]


def test_bars_turning_late_send_one_message_naming_the_symbols_missing(alerting, universe):
    platform, receiver = alerting
    instance = platform.instance
    session = last_session(universe, "XNYS")
    close_index(instance, "DJI", f"{calendar('XNYS').previous_session(session):%Y-%m-%d}")
    close_index(instance, "NDX", session)  # DJI's members are not loaded, but for one in both
    defs = definitions.defs()
    resources = {"alerts": defs.resources["alerts"], "lake": defs.resources["lake"]}

    def tick(cursor: str | None) -> str | None:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources)
        return freshness_alerts.evaluate_tick(context).cursor

    cursor = tick(None)
    assert receiver.messages == []
    key = bars_asset_key("XNYS", "daily_bars")
    # What the daemon records when it finds the policy's deadline passed without an update.
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=key, new_state=FreshnessState.FAIL, previous_state=FreshnessState.PASS, state_change_timestamp=time.time()
        )
    )
    cursor = tick(tick(cursor))  # told once, not again

    (message,) = receiver.messages
    loaded = universe.members("NDX", pd.Timestamp(session))
    missing = [symbol for symbol in universe.members("DJI", pd.Timestamp(session)) if symbol not in loaded]
    assert missing
    assert message["blocks"][0]["text"]["text"] == f"DJI, NDX {session}: bars late"
    fields = {field["text"].split("\n")[0]: field["text"].split("\n")[1] for field in message["blocks"][1]["fields"]}
    assert fields == {"*Index*": "DJI, NDX", "*Session*": session, "*Symbols*": ", ".join(missing)}
    assert (
        f"xnys/daily_bars is late by its freshness policy: {len(missing)} symbols have no bars of {session} stored"
        in message["blocks"][2]["text"]["text"]
    )
    assert message["blocks"][3]["text"]["text"] == f"<{UI}/assets/xnys/daily_bars|Open in Dagster>"

    time.sleep(0.01)
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=key, new_state=FreshnessState.PASS, previous_state=FreshnessState.FAIL, state_change_timestamp=time.time()
        )
    )
    tick(cursor)
    assert len(receiver.messages) == 1  # back on time: nothing to tell
