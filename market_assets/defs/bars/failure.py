"""The failure of a bars step that could not build everything it was asked for."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from market_assets.defs.bars.targets import Target


def step_failure(
    targets: list[Target],
    failures: Mapping[str, Exception],
    blocked: Mapping[str, list[str]],
    resampled: list[str],
) -> dg.Failure:
    """The symbols that could not be fetched, then the partitions whose weekly and monthly bars
    were not built, each with why. Retried only when every fetch failure may pass (a blocked
    snapshot stays blocked until the source changes)."""
    parts, metadata = [], {}
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
