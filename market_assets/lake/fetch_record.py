"""When a bars snapshot was fetched, and whether it is a backfill (its answer held bars after its
session), kept in each file's parquet footer (key `market_assets.fetch`) or its manifest entry.
Why: docs/design.md#prices-as-traded-as-adjusted-as-known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property

import pandas as pd

FOOTER_KEY = b"market_assets.fetch"
"""The parquet key-value metadata key of a bars file's record."""


def without_record(metadata: Mapping[bytes, bytes] | None) -> dict[bytes, bytes]:
    """A file's key-value metadata without its fetch record."""
    return {key: value for key, value in (metadata or {}).items() if key != FOOTER_KEY}


@dataclass(frozen=True)
class FetchRecord:
    """When a snapshot's data was fetched (`at`, UTC) and the last date of the source's answer
    (`through`, at or after the snapshot's session)."""

    at: pd.Timestamp
    through: pd.Timestamp

    @classmethod
    def now(cls, answer_through: pd.Timestamp) -> FetchRecord:
        return cls(pd.Timestamp.now(tz="UTC"), pd.Timestamp(answer_through))

    def backfill_of(self, session: str | pd.Timestamp) -> bool:
        """Whether the snapshot of `session` was fetched after a later session was published."""
        return self.through > pd.Timestamp(session)

    def describe(self, session: str | pd.Timestamp) -> str:
        """ "fetched 2026-12-07 21:40:02 UTC, live", or ", a backfill: ..." with the answer's last date."""
        when = f"fetched {self.at:%Y-%m-%d %H:%M:%S} UTC"
        if self.backfill_of(session):
            return f"{when}, a backfill: the source had bars through {self.through:%Y-%m-%d}"
        return f"{when}, live"

    def footer(self) -> dict[bytes, bytes]:
        """The record as a file's key-value metadata."""
        return {FOOTER_KEY: self._footer_value}

    @cached_property
    def _footer_value(self) -> bytes:
        return json.dumps({"fetched_at": self.at.isoformat(), "through": f"{self.through:%Y-%m-%d}"}).encode()

    @classmethod
    def from_footer(cls, metadata: Mapping[bytes, bytes] | None) -> FetchRecord | None:
        """The record of a file's key-value metadata; None for a file written before records were kept."""
        if not metadata or FOOTER_KEY not in metadata:
            return None
        return _parsed(metadata[FOOTER_KEY])


@cache
def _parsed(value: bytes) -> FetchRecord:
    """A footer's record (kept: a read meets the same few values again and again)."""
    fields = json.loads(value)
    return FetchRecord(pd.Timestamp(fields["fetched_at"]).tz_convert("UTC"), pd.Timestamp(fields["through"]))
