"""The Dagster instance of `close`, `plan` and `verify`: the one at `$DAGSTER_HOME`, refused when
its materializations are stored under another lake than the data root (README.md#configuration)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from market_assets.cli.configuration import data_root_origin
from market_assets.defs.compositions.assets import index_composition
from market_assets.lake.store import ParquetStore
from market_assets.settings import DATA_ROOT, ConfigurationError

HOME = "DAGSTER_HOME"


def open_instance(store: ParquetStore) -> dg.DagsterInstance:
    """The instance at `$DAGSTER_HOME`, if it belongs with the lake `store`: its newest composition
    is stored under `store`'s root, or it holds none (an empty instance goes with any lake)."""
    home = dagster_home()
    instance = dg.DagsterInstance.get()
    recorded = recorded_root(instance)
    if recorded is not None and recorded != store.root:
        raise ConfigurationError(
            f"the instance at {home} ({HOME}) records its materializations under {recorded}, not under "
            f"{store.root} ({data_root_origin()}): set {DATA_ROOT.env_var}={recorded}, or {HOME} to the "
            f"instance of {store.root}"
        )
    return instance


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, refused in one line when it is not set or not an absolute path to a folder."""
    text = os.environ.get(HOME, "").strip()
    fix = f"set {HOME} to the absolute path of the instance's folder, e.g. $PWD/demo/dagster_home"
    if not text:
        raise ConfigurationError(f"{HOME} is not set: {fix}")
    home = Path(text)
    if not home.is_absolute() or not home.is_dir():
        raise ConfigurationError(f"{HOME}={text} is not {'a folder' if home.is_absolute() else 'absolute'}: {fix}")
    return home


def recorded_root(instance: dg.DagsterInstance) -> str | None:
    """The lake root under which the instance's newest composition was stored (from the `path` of
    its materialization), or None when it holds none."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=index_composition.key), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    path = records[0].asset_materialization.metadata.get("path")
    if path is None:
        return None
    root, found, _ = str(path.value).rpartition(f"/{index_composition.key.path[-1]}/")
    return root if found else None
