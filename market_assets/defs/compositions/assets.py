"""`index_composition` (which symbols an index holds after a session) and `index_membership` (which
symbols each index held, session by session)."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from market_assets.defs.metadata import table_preview
from market_assets.defs.partitions import composition_partitions, dimensions, index_partitions, symbol_partitions
from market_assets.defs.publication import wait_for_publication
from market_assets.defs.retry import STOOQ_RETRY
from market_assets.defs.runs import claim_run_process
from market_assets.domain.exchange_sessions import require_session
from market_assets.domain.membership_spells import membership_spells
from market_assets.lake.datasets import INDEX_COMPOSITION, INDEX_MEMBERSHIP
from market_assets.lake.resource import DataLakeResource
from market_assets.sources.errors import StooqError
from market_assets.sources.indices import StockIndex, get_index, misplaced_members
from market_assets.sources.resources import MarketDataSource

_FORBIDDEN_IN_SYMBOLS = ("|", "/", "\\", " ", ",")


@dg.asset(
    partitions_def=composition_partitions,
    group_name="compositions",
    retry_policy=STOOQ_RETRY,
    # A range of (session, index) partitions in one run: `plan` closes the indices of a session with
    # one composition run, not one process per index.
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"parquet"},
)
def index_composition(
    context: dg.AssetExecutionContext, stooq: MarketDataSource, lake: DataLakeResource
) -> dict[str, pd.DataFrame]:
    """Constituents of one index (DJI, NDX, HSI) as seen after the close of one session, when
    fetched (`fetched_at`). New members are added to their exchange's symbol partitions
    (`xnys_symbols`); a run over several partitions stores all of them or none.
    """
    claim_run_process(context)
    order = index_partitions.get_partition_keys()
    wanted = sorted(
        (_Wanted.of(str(key)) for key in context.partition_keys), key=lambda w: (w.session, order.index(w.index.name))
    )
    wait_for_publication(context, [(w.index.calendar, w.session) for w in wanted])
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        fetched = list(pool.map(lambda numbered: _fetch(context, stooq, *numbered), enumerate(wanted)))
    errors = [result for result in fetched if isinstance(result, StooqError)]
    if errors:
        raise dg.Failure("\n".join(str(error) for error in errors), allow_retries=all(error.retryable for error in errors))
    compositions = dict(zip((w.key for w in wanted), fetched, strict=True))
    # Registered in the index dimension's order, whichever answer came first: one run's symbols
    # are then ordered as one run per index would have registered them.
    known: dict[str, set[str]] = {}
    for w in wanted:
        members, symbols = compositions[w.key], symbol_partitions[w.index.calendar].name
        if symbols not in known:
            known[symbols] = set(context.instance.get_dynamic_partitions(symbols))
        new_symbols = [symbol for symbol in members["symbol"] if symbol not in known[symbols]]
        if new_symbols:
            context.instance.add_dynamic_partitions(symbols, new_symbols)
            known[symbols].update(new_symbols)
        context.add_asset_metadata(
            {
                "members": len(members),
                "path": dg.MetadataValue.path(lake.store.path(INDEX_COMPOSITION, w.key)),
                "new_symbols": dg.MetadataValue.text(", ".join(new_symbols) or "none"),
                "preview": table_preview(members[["symbol", "name"]].head(10)),
            },
            partition_key=w.key,
        )
    return compositions


@dataclass(frozen=True)
class _Wanted:
    """One (session, index) partition of the step, its session checked against the index's exchange."""

    key: str
    index: StockIndex
    session: pd.Timestamp

    @classmethod
    def of(cls, key: str) -> "_Wanted":
        dims = dimensions(key, composition_partitions)
        index = get_index(dims["index"])
        return cls(key, index, require_session(index.calendar, dims["date"], f"index {index.name}"))


def _fetch(context: dg.AssetExecutionContext, stooq: MarketDataSource, worker: int, wanted: _Wanted) -> pd.DataFrame | StooqError:
    """The constituents of `wanted` as the partition stores them, or the source's error."""
    try:
        with stooq.worker_slot(context, worker):
            members = stooq.composition(wanted.index.name)
    except StooqError as error:
        return error
    bad = [symbol for symbol in members["symbol"] if any(c in symbol for c in _FORBIDDEN_IN_SYMBOLS)]
    if bad:
        raise dg.Failure(
            f"index {wanted.index.name}: symbols {bad} cannot be partition keys (they contain one of {_FORBIDDEN_IN_SYMBOLS})",
            allow_retries=False,
        )
    misplaced = misplaced_members(wanted.index, list(members["symbol"]))
    if misplaced:
        raise dg.Failure(misplaced, allow_retries=False)
    # The session is the partition's folder (`session=...`), not a column.
    members.insert(0, "index", wanted.index.name)
    members["fetched_at"] = pd.Timestamp.now(tz="UTC")
    return members


@dg.asset(
    deps=[index_composition],
    group_name="compositions",
    retry_policy=STOOQ_RETRY,
    kinds={"parquet"},
)
def index_membership(context: dg.AssetExecutionContext, lake: DataLakeResource) -> pd.DataFrame:
    """Point-in-time membership: one row per spell (`index, symbol, name, first_seen, last_seen,
    current`), rebuilt from every stored composition, so "which symbols were in NDX on date X" has
    an answer for every session the platform recorded.
    """
    store = lake.store
    membership = membership_spells(store.read_asset(INDEX_COMPOSITION))
    changed = membership[~membership["current"]]
    context.add_output_metadata(
        {
            "spells": len(membership),
            "current_members": dg.MetadataValue.json(membership[membership["current"]].groupby("index").size().to_dict()),
            "path": dg.MetadataValue.path(store.path(INDEX_MEMBERSHIP)),
            "departed": table_preview(changed.tail(10)),
        }
    )
    return membership
