"""`index_composition`: which symbols an index holds, as Stooq lists them after a session."""


import dagster as dg
import pandas as pd

from market_assets.assets.publication import wait_for_publication
from market_assets.assets.retry import STOOQ_RETRY
from market_assets.metadata import markdown_table
from market_assets.partitions import composition_partitions, dimensions, symbol_partitions
from market_assets.resources import DataLakeResource, MarketDataSource
from market_assets.sessions import published_at, require_session
from market_assets.stooq import StooqError, get_index

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
    wait_for_publication(context, published_at(stock_index.calendar, session))
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
    members.insert(0, "index", stock_index.name)
    members.insert(1, "session", session)
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
            "preview": dg.MetadataValue.md(markdown_table(members[["symbol", "name"]].head(10))),
        }
    )
    return members
