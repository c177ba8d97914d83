"""What compaction removed, and how each removed snapshot is rebuilt exactly: the manifest
(`<root>/_compacted/<asset>.parquet`), a row per removed snapshot, saying it is the first `rows`
rows of the symbol's snapshot of `source_session` followed by at most one `tail_` row, and when it
was fetched. Why: docs/design.md#compaction-a-manifest-not-links.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from market_assets.lake.datasets import BARS
from market_assets.lake.fetch_record import FetchRecord, without_record

COMPACTED_FOLDER = "_compacted"
"""The manifest's folder under the root (a leading underscore: pyarrow and DuckDB skip it)."""

COMPACTABLE = BARS

TAIL = "tail_"
"""The prefix of a tail row's columns in the manifest."""


@dataclass(frozen=True)
class Manifest:
    """The compacted snapshots of one asset, a row per partition key: `session`, `symbol`,
    `source_session`, `rows`, `has_tail`, `fetched_at`, `through` and the tail's columns."""

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
                    "fetched_at": pd.Series([], dtype="datetime64[ns, UTC]"),
                    "through": pd.Series([], dtype="datetime64[ns]"),
                }
            )
        )

    @classmethod
    def of(cls, entries: pd.DataFrame) -> Manifest:
        keys = entries["session"].astype(str) + "|" + entries["symbol"].astype(str)
        # A manifest written before fetch records were kept has no record of its entries.
        missing = {"fetched_at": pd.NaT, "through": pd.NaT}
        entries = entries.assign(**{name: value for name, value in missing.items() if name not in entries})
        entries["fetched_at"] = pd.to_datetime(entries["fetched_at"], utc=True)
        entries["through"] = pd.to_datetime(entries["through"]).astype("datetime64[ns]")
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

    @cached_property
    def _rows(self) -> dict[str, int]:
        """Each entry's row by key: what a read looks up per snapshot (a dict, not the index's
        `get_loc`, at a twentieth of the cost)."""
        return dict(zip(self.entries.index, range(len(self.entries))))

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        """The columns a lookup reads, as arrays (records are made only for the entries asked for)."""
        entries = self.entries
        return {
            "source": (entries["source_session"].astype(str) + "|" + entries["symbol"].astype(str)).to_numpy(),
            "rows": entries["rows"].to_numpy(),
            "has_tail": entries["has_tail"].to_numpy(bool),
            "fetched_at": entries["fetched_at"].dt.tz_convert(None).to_numpy(),  # UTC
            "through": entries["through"].to_numpy(),
        }

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def keys(self) -> list[str]:
        return list(self.entries.index)

    def source_key(self, key: str) -> str:
        """The key of the stored snapshot that `key` is rebuilt from."""
        return str(self._columns["source"][self._rows[key]])

    def fetch_record(self, key: str) -> FetchRecord | None:
        """When the data of the compacted snapshot `key` was fetched; None when it is not known."""
        row = self._rows[key]
        if row not in self._records:  # made once per entry asked for: a read asks again and again
            at = self._columns["fetched_at"][row]
            through = pd.Timestamp(self._columns["through"][row])
            self._records[row] = None if pd.isna(at) else FetchRecord(pd.Timestamp(at, tz="UTC"), through)
        return self._records[row]

    @cached_property
    def _records(self) -> dict[int, FetchRecord | None]:
        return {}

    @cached_property
    def _tails(self) -> pa.Table:
        tails = self.entries[[column for column in self.entries.columns if column.startswith(TAIL)]]
        return pa.Table.from_pandas(tails, preserve_index=False)

    def rebuild(self, key: str, source: pa.Table) -> pa.Table:
        """The snapshot `key` from `source`, the table of the snapshot `source_key(key)`, rebuilt in
        Arrow without copying."""
        row = self._rows[key]
        head = source.slice(0, int(self._columns["rows"][row]))
        if self._columns["has_tail"][row]:
            tail = self._tails.slice(row, 1).select([f"{TAIL}{column}" for column in source.column_names])
            head = pa.concat_tables([head, tail.rename_columns(source.column_names).cast(source.schema)])
        # The footer says when this snapshot was fetched, not when its source was.
        record = self.fetch_record(key)
        return head.replace_schema_metadata({**without_record(source.schema.metadata), **(record.footer() if record else {})})


def entry_row(key: str, source_session: str, rows: int, tail: pd.Series | None, record: FetchRecord | None) -> dict[str, object]:
    """The manifest row of snapshot `key`, fetched as `record` says: the first `rows` rows of
    `source_session`'s, then `tail`."""
    session, symbol = key.split("|")
    row: dict[str, object] = {
        "session": session,
        "symbol": symbol,
        "source_session": source_session,
        "rows": rows,
        "has_tail": tail is not None,
        "fetched_at": record.at if record else pd.NaT,
        "through": record.through if record else pd.NaT,
    }
    if tail is not None:
        row.update({f"{TAIL}{column}": value for column, value in tail.items()})
    return row
