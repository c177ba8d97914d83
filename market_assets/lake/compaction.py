"""Compaction: the files of snapshots that a newer snapshot of the symbol holds are removed, each
recorded in the manifest (`market_assets/lake/compacted.py`) once its rebuild is checked exact.

Why, and why nothing becomes unreadable or different: docs/design.md#compaction-a-manifest-not-links.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from market_assets.lake.compacted import COMPACTABLE, Manifest, entry_row
from market_assets.lake.fetch_record import FetchRecord
from market_assets.lake.store import ParquetStore

Progress = Callable[[str], None]


@dataclass
class CompactionReport:
    """What a compaction removed (or would remove), asset by asset."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would remove" if dry_run else "removed"
        lines = [
            f"{asset}: {verb} {self.removed.get(asset, 0)} of {self.removed.get(asset, 0) + kept} files, {kept} kept"
            for asset, kept in self.kept.items()
        ]
        after = "would be" if dry_run else "now"
        return lines + [f"bars files: {_mib(self.bytes_before)} before, {after} {_mib(self.bytes_after)}"]


def compact(store: ParquetStore, *, dry_run: bool = False, progress: Progress = lambda line: None) -> CompactionReport:
    """Compact the bars assets of `store` (see the module's docstring)."""
    report = CompactionReport()
    removals: dict[str, list[str]] = {}
    for asset in COMPACTABLE:
        manifest, removable, repointed, kept, sizes = _plan(store, asset)
        report.kept[asset] = kept
        report.removed[asset] = len(removable)
        report.bytes_before += sum(sizes.values())
        gone = set(removable)
        report.bytes_after += sum(size for key, size in sizes.items() if key not in gone)
        progress(f"{asset}: {len(removable)} snapshots can be rebuilt from others, {kept} kept")
        if dry_run or not removable:
            continue
        expected = {key: store.table(asset, key) for key in repointed}  # as rebuilt before they move
        store.write_manifest(asset, manifest)
        written = store.manifest(asset)
        sources: dict[str, pa.Table] = {}
        for key in sorted([*removable, *repointed], key=written.source_key):
            source = written.source_key(key)
            if source not in sources:
                sources.clear()  # keys are in source order: one source held at a time
                sources[source] = store.file_table(store.file(asset, source))
            stored = expected.pop(key) if key in expected else store.file_table(store.file(asset, key))
            if not _same_snapshot(written.rebuild(key, sources[source]), stored):
                raise RuntimeError(f"{asset}[{key}]: the manifest written does not rebuild it; no file removed")
        progress(f"{asset}: manifest written to {store.manifest_file(asset)}")
        removals[asset] = removable
    for asset, keys in removals.items():
        progress(f"{asset}: removing {len(keys)} files")
        for key in keys:
            store.remove(asset, key)
    return report


def _plan(store: ParquetStore, asset: str) -> tuple[Manifest, list[str], list[str], int, dict[str, int]]:
    """The manifest after compacting `asset`, the keys whose files it lets go, the keys of earlier
    entries it re-points, how many files stay, and the size of every file."""
    files = store.file_keys(asset)
    sizes = store.file_sizes(asset, files)
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for key in files:
        session, symbol = key.split("|")
        by_symbol[symbol].append(session)
    rows: list[dict[str, object]] = []
    moved: dict[str, str] = {}  # the key of a snapshot whose file goes -> the session it is rebuilt from
    for symbol, sessions in by_symbol.items():
        sessions.sort(reverse=True)
        base_session, base = sessions[0], store.table(asset, f"{sessions[0]}|{symbol}")
        for session in sessions[1:]:
            key = f"{session}|{symbol}"
            frame = store.table(asset, key)
            derived = _derivation(frame, base)
            if derived is None:
                base_session, base = session, frame  # it cannot be rebuilt: it is the next base
                continue
            rows.append(entry_row(key, base_session, *derived, FetchRecord.from_footer(frame.schema.metadata)))
            moved[key] = base_session
    stored, repointed = set(files), []
    for key, entry in store.manifest(asset).entries.iterrows():
        if key in moved or key in stored:  # superseded by a new entry, or its file is authoritative
            continue
        row = {name: entry[name] for name in entry.index}
        source = f"{row['source_session']}|{row['symbol']}"
        if source in moved:  # its source goes now: it is rebuilt from where that one is
            row["source_session"] = moved[source]
            repointed.append(key)
        rows.append(row)
    entries = pd.DataFrame(rows) if rows else Manifest.empty().entries.reset_index(drop=True)
    return Manifest.of(entries), sorted(moved), repointed, len(files) - len(moved), sizes


def _derivation(frame: pa.Table, base: pa.Table) -> tuple[int, pd.Series | None] | None:
    """How `frame` follows from `base`: its first rows are `base`'s, then at most one row of its
    own. None when it does not (the past was rewritten, or the columns or their types differ).
    Compared in Arrow, null for null: a NaN compares unequal and keeps its file."""
    if frame.schema != base.schema or frame.num_rows == 0:
        return None
    rows = frame.num_rows
    if rows <= base.num_rows and frame.equals(base.slice(0, rows)):
        return rows, None
    head = rows - 1
    if head <= base.num_rows and frame.slice(0, head).equals(base.slice(0, head)):
        return head, frame.slice(head).to_pandas().iloc[0]
    return None


def _same_snapshot(rebuilt: pa.Table, stored: pa.Table) -> bool:
    """The same frame, fetched at the same time."""
    same_record = FetchRecord.from_footer(rebuilt.schema.metadata) == FetchRecord.from_footer(stored.schema.metadata)
    return same_record and rebuilt.to_pandas().equals(stored.to_pandas())


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
