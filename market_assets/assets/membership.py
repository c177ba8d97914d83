"""`index_membership`: which symbols each index held, session by session."""

import dagster as dg
import pandas as pd

from market_assets.assets.composition import index_composition
from market_assets.assets.retry import STOOQ_RETRY
from market_assets.membership import membership_spells
from market_assets.metadata import markdown_table
from market_assets.resources import DataLakeResource


@dg.asset(
    deps=[index_composition],
    group_name="compositions",
    retry_policy=STOOQ_RETRY,
    kinds={"parquet"},
)
def index_membership(context: dg.AssetExecutionContext, lake: DataLakeResource) -> pd.DataFrame:
    """Point-in-time membership: one row per spell (`index, symbol, name, first_seen, last_seen,
    current`), so "which symbols were in NDX on date X" has an answer for every session the
    platform recorded (`market_assets.membership.members_on`).

    Rebuilt from every stored composition rather than updated in place, so a re-materialized or
    backfilled composition is always reflected; a year of three indices is ~750 small files.
    """
    store = lake.store
    membership = membership_spells(
        store.read("index_composition", key) for key in store.partition_keys("index_composition")
    )
    changed = membership[~membership["current"]]
    context.add_output_metadata(
        {
            "spells": len(membership),
            "current_members": dg.MetadataValue.json(
                membership[membership["current"]].groupby("index").size().to_dict()
            ),
            "path": dg.MetadataValue.path(store.path("index_membership")),
            "departed": dg.MetadataValue.md(markdown_table(changed.tail(10))),
        }
    )
    return membership
