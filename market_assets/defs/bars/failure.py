"""The failure of a bars step that could not build everything it was asked for."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from market_assets.defs.bars.targets import Target
from market_assets.lake.errors import LakeWriteError


def step_failure(
    targets: list[Target],
    failures: Mapping[str, Exception],
    blocked: Mapping[str, list[str]],
    resampled: list[str],
    write_error: LakeWriteError | None = None,
) -> dg.Failure:
    """The file that could not be written, the symbols that could not be fetched, then the
    partitions whose weekly and monthly bars were not built, each with why. Retried only when
    every failure may pass (a blocked snapshot stays blocked until the source changes, a full
    volume until space is freed)."""
    parts, metadata = [], {}
    if write_error is not None:
        parts.append(str(write_error))
        metadata["file"] = dg.MetadataValue.path(write_error.path)
    if failures:
        lines = "\n".join(f"- {failures[symbol]}" for symbol in sorted(failures))
        parts.append(f"{len(failures)} of {len(targets)} symbols failed:\n{lines}")
        metadata["failed_symbols"] = dg.MetadataValue.text(", ".join(sorted(failures)))
    if blocked:
        names = " and ".join(resampled)
        lines = "\n".join(f"- {key}: " + "; ".join(blocked[key]) for key in sorted(blocked))
        parts.append(
            f"{names}: {len(blocked)} of {len(targets) - len(failures)} partitions not built, "
            f"their daily bars fail a blocking check:\n{lines}"
        )
        metadata["blocked_partitions"] = dg.MetadataValue.text(", ".join(sorted(blocked)))
    return dg.Failure(
        description="\n".join(parts),
        metadata=metadata,
        allow_retries=bool(failures) and all(getattr(error, "retryable", False) for error in failures.values()),
    )
