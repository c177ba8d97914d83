"""market_assets: index compositions and daily, weekly and monthly bars from Stooq, as Dagster assets.

The code location's `Definitions` are exposed as `code_location`, loaded on first use, so that
importing a subpackage loads neither them nor Dagster. Why: docs/design.md#the-layers.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "code_location":
        from market_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'market_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "code_location"]
