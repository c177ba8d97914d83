"""What compaction removed, and how each removed snapshot is rebuilt exactly.

A bars snapshot whose file was removed is the first `rows` rows of a snapshot of the same symbol
that is still stored (`source_session`), followed by at most one row of its own, its tail: none
for a daily snapshot (an older snapshot is a prefix of a newer one until an adjustment rewrites
the past), the last bar for a weekly or monthly one (its period was still running then, or the
later snapshot's bar of that period has more sessions). The manifest is one file per asset,
`<root>/_compacted/<asset>.parquet`, a row per removed snapshot with its tail's columns prefixed
`tail_`: outside the asset folders, so readers of a folder never mistake it for bars, and
written atomically, in one file, before any file it describes is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import pyarrow as pa

COMPACTED_FOLDER = "_compacted"
"""The manifest's folder under the root (a leading underscore: pyarrow and DuckDB skip it)."""

COMPACTABLE = ("daily_bars", "weekly_bars", "monthly_bars")

TAIL = "tail_"
"""The prefix of a tail row's columns in the manifest."""


@dataclass(frozen=True)
class Manifest:
    """The compacted snapshots of one asset, a row per partition key: `session`, `symbol`,
    `source_session`, `rows`, `has_tail` and the tail's columns."""

    entries: pd.DataFrame

    @classmethod
    def empty(cls) -> Manifest:
        return cls.of(
            pd.DataFrame(
                {
                    "session": pd.Series([], dtype="string"),
                    "symbol": pd.Series([], dtype="string"),
                    "source_session": pd.Series([], dtype="string"),
                    "rows": pd.Series([], dtype="int64"),
                    "has_tail": pd.Series([], dtype="bool"),
                }
            )
        )

    @classmethod
    def of(cls, entries: pd.DataFrame) -> Manifest:
        keys = entries["session"].astype(str) + "|" + entries["symbol"].astype(str)
        return cls(entries.set_index(pd.Index(keys, name="key")))

    @cached_property
    def sources(self) -> frozenset[str]:
        """The keys of the stored snapshots that entries are rebuilt from."""
        return frozenset(self.entries["source_session"].astype(str) + "|" + self.entries["symbol"].astype(str))

    @cached_property
    def names_by_session(self) -> dict[str, frozenset[str]]:
        """The compacted symbols of each session."""
        groups = self.entries.groupby(self.entries["session"].astype(str))["symbol"]
        return {session: frozenset(symbols.astype(str)) for session, symbols in groups}

    def dependents(self, key: str) -> list[str]:
        """The keys of the entries rebuilt from the stored snapshot `key`."""
        if key not in self.sources:
            return []
        session, symbol = key.split("|")
        entries = self.entries
        return list(entries.index[(entries["symbol"] == symbol) & (entries["source_session"] == session)])

    def __contains__(self, key: str) -> bool:
        return key in self.entries.index

    def keys(self) -> list[str]:
        return list(self.entries.index)

    def source_key(self, key: str) -> str:
        """The key of the stored snapshot that `key` is rebuilt from."""
        row = self.entries.index.get_loc(key)
        return f"{self.entries['source_session'].iat[row]}|{self.entries['symbol'].iat[row]}"

    @cached_property
    def _tails(self) -> pa.Table:
        tails = self.entries[[column for column in self.entries.columns if column.startswith(TAIL)]]
        return pa.Table.from_pandas(tails, preserve_index=False)

    def rebuild(self, key: str, source: pa.Table) -> pa.Table:
        """The snapshot `key` from `source`, the table of the snapshot `source_key(key)`.

        In Arrow, where cutting the source and appending the tail row, cast to the source's
        types, copies nothing: rebuilding costs a small part of reading the source.
        """
        row = self.entries.index.get_loc(key)
        head = source.slice(0, int(self.entries["rows"].iat[row]))
        if not self.entries["has_tail"].iat[row]:
            return head
        tail = self._tails.slice(row, 1).select([f"{TAIL}{column}" for column in source.column_names])
        return pa.concat_tables([head, tail.rename_columns(source.column_names).cast(source.schema)])


def entry_row(key: str, source_session: str, rows: int, tail: pd.Series | None) -> dict[str, object]:
    """The manifest row of snapshot `key`: the first `rows` rows of `source_session`'s, then `tail`."""
    session, symbol = key.split("|")
    row: dict[str, object] = {
        "session": session,
        "symbol": symbol,
        "source_session": source_session,
        "rows": rows,
        "has_tail": tail is not None,
    }
    if tail is not None:
        row.update({f"{TAIL}{column}": value for column, value in tail.items()})
    return row
