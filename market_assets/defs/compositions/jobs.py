"""Jobs of the compositions: one index's composition for one session, and the membership table."""

from __future__ import annotations

import dagster as dg

from market_assets.defs.compositions.assets import index_composition, index_membership

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
