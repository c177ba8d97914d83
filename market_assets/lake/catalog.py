"""Which partitions of a (session, symbol) asset the lake holds, kept between reads: each symbol's
sessions with a snapshot (a file or compacted), kept by `ParquetStore.catalog`.
Why: docs/design.md#prices-as-traded-as-adjusted-as-known.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from market_assets.lake.compacted import Manifest


@dataclass(frozen=True)
class Catalog:
    """The sessions of each symbol's snapshots, oldest first."""

    sessions_by_name: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, listing: Iterable[tuple[str, Iterable[str]]], manifest: Manifest) -> Catalog:
        """From `(session, names with a file)` pairs and the compacted snapshots."""
        found: dict[str, set[str]] = {}
        for session, names in listing:
            for name in names:
                found.setdefault(name, set()).add(session)
        for session, names in manifest.names_by_session.items():
            for name in names:
                found.setdefault(name, set()).add(session)
        return cls({name: sorted(sessions) for name, sessions in sorted(found.items())})

    @cached_property
    def first_session(self) -> str | None:
        """The oldest session with a snapshot; None when nothing is stored."""
        return min((sessions[0] for sessions in self.sessions_by_name.values()), default=None)

    def at_or_before(self, name: str, last: str) -> list[str]:
        """The sessions of `name`'s snapshots at or before `last`, newest first."""
        sessions = self.sessions_by_name.get(name, [])
        return sessions[: bisect.bisect_right(sessions, last)][::-1]
