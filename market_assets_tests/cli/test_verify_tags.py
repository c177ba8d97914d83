"""`python -m market_assets verify` tags its `verify_bars` runs as a close's runs are tagged: with
the index and the session, read back from the instance."""

from __future__ import annotations

import dagster as dg

from market_assets.cli import main as cli
from market_assets.cli.close import close_index
from market_assets.defs.runs import INDEX_TAG, SESSION_TAG
from market_assets_tests.universe import last_session


def test_verify_runs_carry_the_index_and_session_tags_of_the_close_runs(platform, synthetic_universe):
    session = last_session(synthetic_universe, "XNYS")
    close_index(platform.instance, "DJI", session)
    closed = platform.instance.get_runs(dg.RunsFilter(job_name="dji_close"))

    assert cli(["verify", "DJI", "--session", session]) == 0

    verified = platform.instance.get_runs(dg.RunsFilter(job_name="verify_bars"))
    assert [(run.tags.get(INDEX_TAG), run.tags.get(SESSION_TAG)) for run in verified] == [("DJI", session)]
    assert {(run.tags[INDEX_TAG], run.tags[SESSION_TAG]) for run in closed} == {("DJI", session)}
