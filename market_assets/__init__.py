"""market_assets: index compositions and daily, weekly and monthly bars from Stooq, as Dagster assets.

The code location's `Definitions` are `market_assets.definitions.defs`. This package exposes them
to Dagster as `code_location`, loaded on first use, so that `dagster job execute -m market_assets`,
`dagster api grpc -m market_assets` and `workspace.yaml` find them here while
`import market_assets.sources` (or `.lake`, `.domain`, `.settings`) loads neither the definitions
nor Dagster. (Not `defs`: that name is the `market_assets.defs` package of the definitions' parts.)
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
