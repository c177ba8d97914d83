"""The lake the commands work on, at the data root: refused in one line naming the root and the fix
when there is none (README.md#configuration). Loads Dagster only to ask an instance about its runs."""

from __future__ import annotations

import os

from market_assets import settings
from market_assets.lake.compacted import COMPACTED_FOLDER
from market_assets.lake.datasets import ADJUSTMENT_EVENTS, BARS, INDEX_COMPOSITION, INDEX_MEMBERSHIP
from market_assets.lake.run_history import RUN_HISTORY
from market_assets.lake.store import ParquetStore
from market_assets.settings import ConfigurationError

REFUSED = 2
"""The exit status of a command refused for its settings or its input, as argparse's for a bad
command line."""

EXAMPLE_LAKE = "./demo/lake"
"""The data root `python -m market_assets demo` writes, run from the project's folder."""

LAKE_ENTRIES = frozenset(
    {*BARS, ADJUSTMENT_EVENTS, INDEX_COMPOSITION, f"{INDEX_MEMBERSHIP}.parquet", RUN_HISTORY, COMPACTED_FOLDER}
)
"""What a lake holds at its root, in today's layout and the earlier one."""


def configured_lake() -> ParquetStore:
    """The lake at the data root, whether or not anything is stored there (a close creates it)."""
    return ParquetStore(settings.DATA_ROOT.value())


def existing_lake() -> ParquetStore:
    """The lake at the data root, refused when the root is no folder (a local path that does not
    exist, a URL under which nothing is stored) or a folder of something else (it holds none of
    `LAKE_ENTRIES`, e.g. the demo's folder rather than its lake). An empty folder is a lake with
    nothing stored yet, which a command reading it says itself."""
    store = configured_lake()
    try:
        names = store.root_names()
    except OSError as error:
        raise ConfigurationError(
            f"cannot list the lake at {store.root} ({data_root_origin()}): {error}; check the root and its credentials"
        ) from None
    if names is None:
        raise _no_lake(store.root, "")
    if names and not names & LAKE_ENTRIES:
        raise _no_lake(store.root, f": it holds no {INDEX_COMPOSITION}, {BARS[0]} or other folder of a lake")
    return store


def _no_lake(root: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"no lake at {root} ({data_root_origin()}){why}: set {settings.DATA_ROOT.env_var} to the data root "
        f"that `python -m market_assets demo` or a close wrote, e.g. {EXAMPLE_LAKE}"
    )


def data_root_origin() -> str:
    """Where the data root comes from, for a message naming it: the variable, or its default."""
    setting = settings.DATA_ROOT
    if setting.is_set():
        return setting.env_var
    return f"{setting.env_var} is not set: the default, {setting.default}"


def close_in_flight() -> bool:
    """Whether a close run is queued or running on the instance at `$DAGSTER_HOME`: what `compact`
    and `migrate` wait for. Without the variable there is no instance to ask, and Dagster is not loaded."""
    if not os.environ.get("DAGSTER_HOME"):
        return False
    import dagster as dg

    from market_assets.defs.runs import close_in_flight as in_flight

    with dg.DagsterInstance.get() as instance:
        return in_flight(instance)
