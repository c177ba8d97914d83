"""Which stored composition of an index applies to a session, and the symbols it lists: the one
answer the close's planning, its bars step, the alerts and the readers share."""

from __future__ import annotations

from market_assets.lake.datasets import INDEX_COMPOSITION
from market_assets.lake.store import ParquetStore


def composition_for(store: ParquetStore, index: str, session: str) -> str | None:
    """The key (`<session>|<index>`) of `index`'s composition that applies to `session`: its own
    when stored, else the latest stored before it; None when none is stored at or before it.

    The lake is asked, not the instance: the list is read from the lake, readers have no instance,
    and `close`, `plan` and `verify` refuse an instance that records another lake.
    """
    sessions = store.catalog(INDEX_COMPOSITION).at_or_before(index, session)
    return f"{sessions[0]}|{index}" if sessions else None


def constituents(store: ParquetStore, key: str) -> list[str]:
    """The symbols the stored composition `key` (`<session>|<index>`) lists, in its order."""
    return list(store.read(INDEX_COMPOSITION, key)["symbol"])
