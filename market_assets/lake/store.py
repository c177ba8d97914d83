"""Where parquet goes: one file per partition at a path a person can guess,
`<root>/<asset>/session=<date>/<symbol or index>.parquet`, written atomically, on a local folder or
any fsspec URL. Everything that reads or writes the lake goes through `ParquetStore`.
Why: docs/design.md#the-lakes-files-say-what-they-hold and #the-io-manager."""

from __future__ import annotations

import errno
import io
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TypeVar

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from market_assets import settings
from market_assets.lake.catalog import Catalog
from market_assets.lake.compacted import COMPACTABLE, COMPACTED_FOLDER, Manifest
from market_assets.lake.errors import LakeWriteError, ReadBackError
from market_assets.lake.fetch_record import FetchRecord, without_record

SESSION_FOLDER = "session="
"""The prefix of a session's folder: Hive's `key=value` naming, which readers turn into a column."""


_TEMPORARY = ".tmp"
"""The ending of a file written aside, `.<target>.<uuid>.tmp`, until it is renamed over its target."""

_REPLACED_READS = 5
"""Reads of an object that writers keep replacing (0.05 s, 0.1 s, ... apart), the last one's error told."""

T = TypeVar("T")


def _temporary_of(name: str) -> str | None:
    """The target a file named `name` was written aside for, or None when it is no such file."""
    if name.startswith(".") and name.endswith(_TEMPORARY):
        return name[1 : -len(_TEMPORARY)].rpartition(".")[0] or None
    return None


class ParquetStore:
    """Reads and atomically writes one parquet file per asset partition under `root` (a local
    folder, made absolute, or an fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.root = (root if "://" in root else str(Path(root).resolve())).rstrip("/")
        self._fs, self._base = fsspec.core.url_to_fs(self.root)
        self._local = isinstance(self._fs, LocalFileSystem)
        self._manifests: dict[str, tuple[object, Manifest]] = {}
        self._catalogs: dict[str, tuple[object, Manifest, Catalog]] = {}

    def check_writable(self) -> None:
        """Fail at once, naming the root, when no partition could be written under it.

        A local root is created if needed and a file is written and removed in it; an object
        store's credentials and permissions are left to its first write.
        """
        if not self._local:
            return
        try:
            Path(self._base).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self._base, prefix=".write-check-"):
                pass
        except OSError as error:
            raise ValueError(
                f"data root {self.root} is not writable ({error.strerror or error}): set "
                f"{settings.DATA_ROOT.env_var} to a folder this user can write"
            ) from None

    def root_names(self) -> frozenset[str] | None:
        """The names of what the root holds, or None when the root is no folder (a local path that
        does not exist, a URL under which nothing is stored); an `OSError` when it cannot be listed."""
        if not self._fs.isdir(self._base):
            return None
        return frozenset(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self._fs.ls(self._base, detail=False))

    def path(self, asset: str, partition_key: str | None = None) -> str:
        """`2026-11-20|AAPL.US` of `daily_bars` lives at
        `<root>/daily_bars/session=2026-11-20/AAPL.US.parquet`; an unpartitioned asset at
        `<root>/<asset>.parquet`."""
        if partition_key is None:
            return f"{self.root}/{asset}.parquet"
        parts = partition_key.split("|")
        if len(parts) != 2 or any(not part or "/" in part or part in (".", "..") for part in parts):
            raise ValueError(f"{asset}: partition key {partition_key!r} cannot name a file (expected 'date|name')")
        session, name = parts
        return f"{self.root}/{asset}/{SESSION_FOLDER}{session}/{name}.parquet"

    def partition_keys(self, asset: str) -> list[str]:
        """Keys of the stored two-dimensional partitions of `asset` (`date|symbol`), sorted: those
        with a file and those compacted."""
        return sorted(set(self.file_keys(asset)) | set(self.manifest(asset).keys()))

    def file_keys(self, asset: str) -> list[str]:
        """Keys of the partitions of `asset` that have a file, sorted."""
        base = self.asset_folder(asset)
        found = self._fs.glob(f"{base}/{SESSION_FOLDER}*/*.parquet")
        keys = []
        for path in found:
            folder, name = path[len(base) + 1 : -len(".parquet")].split("/")
            keys.append(f"{folder[len(SESSION_FOLDER) :]}|{name}")
        return sorted(keys)

    def stored_sessions(self, asset: str) -> list[str]:
        """The sessions (`YYYY-MM-DD`) that `asset` has a folder or a compacted snapshot for,
        oldest first."""
        base = self.asset_folder(asset)
        if not self._fs.exists(base):
            return sorted(self.manifest(asset).names_by_session)
        folders = (path.rstrip("/").rsplit("/", 1)[-1] for path in self._fs.ls(base, detail=False))
        sessions = {folder[len(SESSION_FOLDER) :] for folder in folders if folder.startswith(SESSION_FOLDER)}
        return sorted(sessions | set(self.manifest(asset).names_by_session))

    def stored_names(self, asset: str, session: str) -> list[str]:
        """The symbols (or indices) stored for `session` in `asset`, as files or compacted, sorted."""
        compacted = self.manifest(asset).names_by_session.get(session, frozenset())
        return sorted(set(self.file_names(asset, session)) | compacted)

    def file_names(self, asset: str, session: str) -> list[str]:
        """The symbols (or indices) that have a file in `asset`'s folder of `session`, sorted."""
        folder = f"{self.asset_folder(asset)}/{SESSION_FOLDER}{session}"
        if not self._fs.exists(folder):
            return []
        files = (path.rsplit("/", 1)[-1] for path in self._fs.ls(folder, detail=False))
        # Hidden names are the temporary files of writes under way.
        return sorted(name[: -len(".parquet")] for name in files if name.endswith(".parquet") and name[0] != ".")

    def exists(self, asset: str, partition_key: str | None = None) -> bool:
        """Whether the partition is stored: as a file, or compacted (rebuilt when read)."""
        if self._fs.exists(self._fs_path(asset, partition_key)):
            return True
        return partition_key is not None and partition_key in self.manifest(asset)

    def read(self, asset: str, partition_key: str | None = None) -> pd.DataFrame:
        """The partition's frame: its file, or, for a compacted snapshot, the rows rebuilt from the
        stored snapshot its manifest entry names (exactly what was written)."""
        return self.table(asset, partition_key).to_pandas()

    def table(self, asset: str, partition_key: str | None = None) -> pa.Table:
        """The partition as an Arrow table (see `read`)."""
        try:
            return self.file_table(self._fs_path(asset, partition_key))
        except FileNotFoundError:
            manifest = self.manifest(asset) if partition_key is not None else Manifest.empty()
            if partition_key in manifest:
                return manifest.rebuild(partition_key, self.table(asset, manifest.source_key(partition_key)))
            raise FileNotFoundError(
                f"{_name(asset, partition_key)}: nothing stored at {self.path(asset, partition_key)}"
            ) from None
        except ValueError as error:
            raise ValueError(f"{_name(asset, partition_key)}: {error}") from None

    def read_file(self, path: str) -> pd.DataFrame:
        """One parquet file at `path` on the store's filesystem (see `filesystem`) as a frame."""
        return self.file_table(path).to_pandas()

    def file_table(self, path: str) -> pa.Table:
        """One parquet file at `path` on the store's filesystem as an Arrow table.

        Read as one file (`ParquetFile`), not through the dataset API of `pq.read_table`, which
        takes twice as long for a file of a symbol's history and would find nothing more in it; a
        local file by Arrow's own reader, its column chunks fetched in one pass (`pre_buffer`).
        """
        try:
            if self._local:
                if not os.path.exists(path):  # cheaper than Arrow's error, met by every compacted snapshot
                    raise FileNotFoundError(path)
                return pq.ParquetFile(path, pre_buffer=True).read()
            return self._remote_read(path, lambda handle: pq.ParquetFile(handle).read())
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as error:
            raise ValueError(f"{path} is not readable parquet ({error})") from None

    def _remote_read(self, path: str, read: Callable[[IO[bytes]], T]) -> T:
        """`read` of an object, done again when a writer replaced the object between its opening and
        its last range (s3fs's `FileExpired`, an EBUSY): a reader sees the old object or the new one."""
        for attempt in range(_REPLACED_READS - 1):
            try:
                with self._fs.open(path, "rb") as handle:
                    return read(handle)
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                self._fs.invalidate_cache(path)
                time.sleep(0.05 * 2**attempt)
        with self._fs.open(path, "rb") as handle:
            return read(handle)

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem the root is on; its paths are those of `asset_folder`."""
        return self._fs

    def asset_folder(self, asset: str) -> str:
        """The folder of a partitioned asset as a path on `filesystem` (no URL scheme)."""
        return self._fs_path(asset, None)[: -len(".parquet")]

    def manifest(self, asset: str) -> Manifest:
        """The compacted snapshots of `asset` (`market_assets/lake/compacted.py`), read again
        whenever the manifest file changed."""
        if asset not in COMPACTABLE:
            return _NO_MANIFEST
        path = self.manifest_file(asset)
        try:
            if self._local:
                status = os.stat(path)  # a tenth of fsspec's `info`: a read asks once per snapshot
                stamp: tuple[object, object] = (status.st_size, status.st_mtime_ns)
            else:
                self._fs.invalidate_cache(path)
                info = self._fs.info(path)
                stamp = (info.get("size"), info.get("mtime") or info.get("LastModified") or info.get("ETag"))
        except FileNotFoundError:
            return _NO_MANIFEST
        cached = self._manifests.get(asset)
        if cached is None or cached[0] != stamp:
            cached = (stamp, Manifest.of(self.read_file(path)))
            self._manifests[asset] = cached
        return cached[1]

    def catalog(self, asset: str) -> Catalog:
        """The sessions of each symbol's stored snapshots of `asset` (`market_assets/lake/catalog.py`).

        On a local root it is kept until the asset folder's modification time or the manifest
        changes: a new session folder changes the first, and every write of a partition new to
        its session folder moves it on (`_replace_local`), so one `stat` tells whether the listing
        still holds. Files put into the lake by anything but the store are seen by a store made
        after them. An object store's catalog is listed on every call.
        """
        manifest = self.manifest(asset)
        try:
            stamp = os.stat(self.asset_folder(asset)).st_mtime_ns if self._local else None
        except FileNotFoundError:
            stamp = None
        cached = self._catalogs.get(asset)
        if stamp is None or cached is None or cached[0] != stamp or cached[1] is not manifest:
            listing = ((session, self.file_names(asset, session)) for session in self.stored_sessions(asset))
            cached = (stamp, manifest, Catalog.of(listing, manifest))
            self._catalogs[asset] = cached
        return cached[2]

    def manifest_file(self, asset: str) -> str:
        """Where the manifest of `asset` is, as a path on `filesystem`."""
        return self._fs_path(f"{COMPACTED_FOLDER}/{asset}", None)

    def read_asset(self, asset: str) -> pd.DataFrame:
        """Every stored partition of a two-dimensional `asset` as one frame, with the `session` of
        each row from its folder (as a timestamp); empty when nothing is stored."""
        base = self.asset_folder(asset)
        if not self._fs.exists(base):
            return pd.DataFrame({"session": pd.Series([], dtype="datetime64[ns]")})
        dataset = ds.dataset(
            base,
            filesystem=self._fs,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("session", pa.string())]), flavor="hive"),
        )
        frame = dataset.to_table().to_pandas()
        frame["session"] = pd.to_datetime(frame["session"]).astype("datetime64[ns]")
        return frame

    def write(
        self,
        asset: str,
        partition_key: str | None,
        frame: pd.DataFrame,
        *,
        read_back: bool = False,
        fetched: FetchRecord | None = None,
    ) -> str:
        """Write `frame`, replacing any previous file only once the new one is complete; a bars
        snapshot with its `fetched` record in the file's footer.

        Compacted snapshots rebuilt from the partition's current file get their own files back
        first, so that replacing it (a forced re-run) changes nothing else.

        A killed run leaves at worst a hidden temporary file beside the target, never a half-written
        target: local files are written aside and renamed (atomic on POSIX); object stores publish
        an object only when its upload completes. A write that fails (a full volume, an object
        store's error or timeout) raises `LakeWriteError`, naming the file, and leaves the
        previous file in place. With `read_back`, the file's bytes are read back once written, and
        a file that differs from what was written is a `LakeWriteError` too (writing again may help).
        """
        if partition_key is not None:
            self._restore_dependents(asset, partition_key)
        self._write_file(self._fs_path(asset, partition_key), frame, read_back, fetched)
        return self.path(asset, partition_key)

    def fetch_record(self, asset: str, partition_key: str) -> FetchRecord | None:
        """When the stored snapshot's data was fetched (from its file's footer, or its manifest
        entry when compacted); None when that was not recorded."""
        path = self._fs_path(asset, partition_key)
        try:
            if self._local:
                if not os.path.exists(path):
                    raise FileNotFoundError(path)
                return FetchRecord.from_footer(pq.read_schema(path).metadata)
            return FetchRecord.from_footer(self._remote_read(path, pq.read_schema).metadata)
        except FileNotFoundError:
            manifest = self.manifest(asset)
            if partition_key in manifest:
                return manifest.fetch_record(partition_key)
            raise FileNotFoundError(
                f"{_name(asset, partition_key)}: nothing stored at {self.path(asset, partition_key)}"
            ) from None

    def remove_leftovers(self, asset: str, partition_keys: Iterable[str]) -> list[str]:
        """Remove the hidden temporary files that killed writes of these partitions left beside
        them, and return their paths (local roots only: an object store publishes nothing partial).

        The run about to write the partitions calls it first, when no other write of them is
        under way; each session folder is listed once.
        """
        if not self._local:
            return []
        names: dict[Path, set[str]] = {}
        for key in partition_keys:
            target = Path(self._fs_path(asset, key))
            names.setdefault(target.parent, set()).add(target.name)
        removed = []
        for folder, targets in names.items():
            try:
                entries = [entry.name for entry in os.scandir(folder)]
            except FileNotFoundError:
                continue
            for name in entries:
                if _temporary_of(name) in targets:
                    (folder / name).unlink(missing_ok=True)
                    removed.append(str(folder / name))
        return removed

    def _write_file(self, path: str, frame: pd.DataFrame, read_back: bool = False, fetched: FetchRecord | None = None) -> None:
        """Write `frame` (with `fetched` in the footer) to `path` (on `filesystem`) whole or not at
        all, and with `read_back` compare what the file then holds with what was written;
        `LakeWriteError` names the file and the cause."""
        buffer = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if fetched is not None:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **fetched.footer()})
        # Without dictionary encoding, which prices and dates (nearly all distinct) never use but
        # the writer tries per column: writing takes a third less time, and files are smaller.
        pq.write_table(table, buffer, compression="zstd", use_dictionary=False)
        data = buffer.getvalue()
        if not self._local:
            try:
                # One upload of the whole file: the store publishes the object only once it is in.
                self._fs.pipe_file(path, data)
            except Exception as error:  # whatever the store's client raises, nothing was published
                raise LakeWriteError(self._url(path), error) from error
        else:
            self._replace_local(path, data)
        if read_back:
            self._compare(path, data)

    def _compare(self, path: str, written: bytes) -> None:
        """`LakeWriteError` when the file at `path` does not hold the bytes `written`."""
        try:
            stored = self._fs.cat_file(path)
        except Exception as error:  # a store's or the disk's error: what was written is unknown
            raise LakeWriteError(self._url(path), ReadBackError(f"it cannot be read back ({error})")) from error
        if stored != written and not _same_bars(stored, written):
            raise LakeWriteError(
                self._url(path), ReadBackError(f"it reads back {len(stored)} bytes other than the {len(written)} written")
            )

    @staticmethod
    def _replace_local(path: str, data: bytes) -> None:
        """Write `data` aside, then rename it over `path` (atomic on POSIX); a partition new to its
        session folder moves its asset folder's modification time on (see `catalog`)."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TEMPORARY}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            new = not target.exists()
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            if new and target.parent.name.startswith(SESSION_FOLDER):
                _move_on(target.parent.parent)
        except OSError as error:
            raise LakeWriteError(path, error) from error
        finally:
            temporary.unlink(missing_ok=True)

    def _url(self, path: str) -> str:
        """A path on `filesystem` as the root names it (with its URL scheme)."""
        return f"{self.root}{path[len(self._base.rstrip('/')) :]}"

    def _restore_dependents(self, asset: str, partition_key: str) -> None:
        manifest = self.manifest(asset)
        dependents = manifest.dependents(partition_key)
        if not dependents or not self._fs.exists(self._fs_path(asset, partition_key)):
            return
        source = self.table(asset, partition_key)
        for key in dependents:
            rebuilt = manifest.rebuild(key, source)
            self._write_file(self._fs_path(asset, key), rebuilt.to_pandas(), fetched=manifest.fetch_record(key))
        self.write_manifest(asset, Manifest.of(manifest.entries.drop(index=dependents).reset_index(drop=True)))

    def write_manifest(self, asset: str, manifest: Manifest) -> None:
        """Replace the manifest of `asset` atomically (see `write`)."""
        self._write_file(self.manifest_file(asset), manifest.entries.reset_index(drop=True))

    def remove(self, asset: str, partition_key: str) -> None:
        """Remove the partition's file (compaction, once its manifest entry is written)."""
        self._fs.rm(self._fs_path(asset, partition_key))

    def file_sizes(self, asset: str, keys: list[str]) -> dict[str, int]:
        """The size in bytes of each partition's file."""
        return {key: int(self._fs.info(self._fs_path(asset, key))["size"]) for key in keys}

    def write_partitions(self, asset: str, frames: Mapping[str, pd.DataFrame]) -> str:
        """Write each partition's frame (see `write`) and say where, for the run's log:
        `daily_bars: 30 partitions written under <root>/daily_bars/2026-11-25`."""
        for key, frame in frames.items():
            self.write(asset, key, frame)
        folders = sorted({self.path(asset, key).rsplit("/", 1)[0] for key in frames})
        count = f"{len(frames)} partition" + ("s" if len(frames) != 1 else "")
        return f"{asset}: {count} written under {', '.join(folders) or self.root}"

    def file(self, asset: str, partition_key: str) -> str:
        """The partition's file as a path on `filesystem` (no URL scheme), for readers given the
        filesystem (pyarrow, DuckDB)."""
        return self._fs_path(asset, partition_key)

    def _fs_path(self, asset: str, partition_key: str | None) -> str:
        relative = self.path(asset, partition_key)[len(self.root) :]
        return f"{self._base.rstrip('/')}{relative}"


_NO_MANIFEST = Manifest.empty()


def _same_bars(stored: bytes, written: bytes) -> bool:
    """Whether two parquet files hold the same rows, whenever each was fetched: what a concurrent
    close of the same session leaves in place of the bytes this one wrote."""
    try:
        tables = [pq.read_table(io.BytesIO(data)) for data in (stored, written)]
    except (pa.ArrowException, OSError):
        return False
    first, second = (table.replace_schema_metadata(without_record(table.schema.metadata)) for table in tables)
    return first.equals(second, check_metadata=True)


def _move_on(folder: Path) -> None:
    """Set `folder`'s modification time to now, and at least a nanosecond past its own: a kept
    catalog sees the change even within the file system's clock tick."""
    moved = max(time.time_ns(), os.stat(folder).st_mtime_ns + 1)
    os.utime(folder, ns=(moved, moved))


def _name(asset: str, partition_key: str | None) -> str:
    return asset if partition_key is None else f"{asset}[{partition_key}]"
