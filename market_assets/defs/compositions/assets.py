"""`index_composition` (which symbols an index holds after a session) and `index_membership` (which
symbols each index held, session by session)."""

import dagster as dg
import pandas as pd

from market_assets.defs.metadata import table_preview
from market_assets.defs.partitions import composition_partitions, dimensions, symbol_partitions
from market_assets.defs.publication import wait_for_publication
from market_assets.defs.retry import STOOQ_RETRY
from market_assets.domain.exchange_sessions import require_session
from market_assets.domain.membership_spells import membership_spells
from market_assets.lake.resource import DataLakeResource
from market_assets.sources.errors import StooqError
from market_assets.sources.indices import get_index
from market_assets.sources.resources import MarketDataSource

_FORBIDDEN_IN_SYMBOLS = ("|", "/", "\\", " ", ",")


@dg.asset(
    partitions_def=composition_partitions,
    group_name="compositions",
    retry_policy=STOOQ_RETRY,
    kinds={"parquet"},
)
def index_composition(
    context: dg.AssetExecutionContext, stooq: MarketDataSource, lake: DataLakeResource
) -> pd.DataFrame:
    """Constituents of one index (DJI, NDX, HSI) as seen after the close of one session.

    Stooq's composition page only shows today's members, so a partition records who was listed
    when it was fetched (`fetched_at`). New members are added to the `symbols` partitions here, so
    the bars of a session can be materialized as soon as its composition is known; members that
    left keep their partitions and history.
    """
    keys = dimensions(context.partition_key, composition_partitions)
    stock_index = get_index(keys["index"])
    session = require_session(stock_index.calendar, keys["date"], f"index {stock_index.name}")
    wait_for_publication(context, [(stock_index.calendar, session)])
    try:
        with stooq.worker_slot(context, 0):
            members = stooq.composition(stock_index.name)
    except StooqError as error:
        raise dg.Failure(str(error), allow_retries=error.retryable) from error
    bad = [symbol for symbol in members["symbol"] if any(c in symbol for c in _FORBIDDEN_IN_SYMBOLS)]
    if bad:
        raise dg.Failure(
            f"index {stock_index.name}: symbols {bad} cannot be partition keys "
            f"(they contain one of {_FORBIDDEN_IN_SYMBOLS})",
            allow_retries=False,
        )
    # The session is the partition's folder (`session=...`), not a column.
    members.insert(0, "index", stock_index.name)
    members["fetched_at"] = pd.Timestamp.now(tz="UTC")

    known = set(context.instance.get_dynamic_partitions(symbol_partitions.name))
    new_symbols = [symbol for symbol in members["symbol"] if symbol not in known]
    if new_symbols:
        context.instance.add_dynamic_partitions(symbol_partitions.name, new_symbols)
    context.add_output_metadata(
        {
            "members": len(members),
            "path": dg.MetadataValue.path(lake.store.path("index_composition", context.partition_key)),
            "new_symbols": dg.MetadataValue.text(", ".join(new_symbols) or "none"),
            "preview": table_preview(members[["symbol", "name"]].head(10)),
        }
    )
    return members


@dg.asset(
    deps=[index_composition],
    group_name="compositions",
    retry_policy=STOOQ_RETRY,
    kinds={"parquet"},
)
def index_membership(context: dg.AssetExecutionContext, lake: DataLakeResource) -> pd.DataFrame:
    """Point-in-time membership: one row per spell (`index, symbol, name, first_seen, last_seen,
    current`), so "which symbols were in NDX on date X" has an answer for every session the
    platform recorded (`market_assets.domain.membership_spells.members_on`).

    Rebuilt from every stored composition rather than updated in place, so a re-materialized or
    backfilled composition is always reflected; a year of three indices is ~750 small files.
    """
    store = lake.store
    membership = membership_spells(store.read_asset("index_composition"))
    changed = membership[~membership["current"]]
    context.add_output_metadata(
        {
            "spells": len(membership),
            "current_members": dg.MetadataValue.json(
                membership[membership["current"]].groupby("index").size().to_dict()
            ),
            "path": dg.MetadataValue.path(store.path("index_membership")),
            "departed": table_preview(changed.tail(10)),
        }
    )
    return membership
