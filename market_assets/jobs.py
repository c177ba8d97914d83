"""Jobs: compositions for any (session, index), and one close job per index for its bars."""

from __future__ import annotations

import dagster as dg

from market_assets.assets.bars import INDEX_TAG, bars
from market_assets.assets.composition import index_composition
from market_assets.assets.membership import index_membership
from market_assets.executors import close_executor
from market_assets.stooq.indices import INDICES

compositions_job = dg.define_asset_job(
    name="index_compositions",
    selection=dg.AssetSelection.assets(index_composition),
    description="Fetch one index's composition for one session and register new symbols.",
)

membership_job = dg.define_asset_job(
    name="refresh_membership",
    selection=dg.AssetSelection.assets(index_membership),
    description="Rebuild the point-in-time membership table from the stored compositions.",
)


def close_job_name(index: str) -> str:
    return f"{index.lower()}_close"


close_jobs = {
    name: dg.define_asset_job(
        name=close_job_name(name),
        selection=dg.AssetSelection.assets(bars),
        tags={INDEX_TAG: name},
        # The step in a pod of its own on Kubernetes with MARKET_ASSETS_EXECUTOR=k8s; by default
        # (None) the in-process executor of the Definitions, as for every other job.
        executor_def=close_executor(),
        description=(
            f"Daily, weekly and monthly bars of the {stock_index.title} constituents for one "
            "session, and the adjustments their snapshots made to the past, in one run (a "
            "partition range over the session's constituents), in one step that resamples each "
            "symbol's snapshot as soon as it is fetched."
        ),
    )
    for name, stock_index in INDICES.items()
}
