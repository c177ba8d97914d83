"""The code location's one `Definitions`: each domain's own (compositions, bars, maintenance,
alerts), merged with the resources they share, configured from the environment
(`market_assets.settings`)."""

from __future__ import annotations

import dagster as dg

from market_assets import settings
from market_assets.defs.alerts.definitions import alerts_definitions
from market_assets.defs.bars.definitions import bars_definitions
from market_assets.defs.compositions.definitions import compositions_definitions
from market_assets.defs.maintenance.definitions import maintenance_definitions
from market_assets.defs.resources import ClosePlanningResource, bound
from market_assets.lake.io_manager import ParquetIOManager
from market_assets.lake.resource import DataLakeResource
from market_assets.sources.resources import MarketDataSource, StooqFilesResource, StooqResource


@dg.definitions
def defs() -> dg.Definitions:
    """Built when the code location loads, so each process binds its resources to the environment
    it has then (see `market_assets.settings`)."""
    return dg.Definitions.merge(
        compositions_definitions(),
        bars_definitions(),
        maintenance_definitions(),
        alerts_definitions(),
        shared_definitions(),
    )


def shared_definitions() -> dg.Definitions:
    """The resources every domain uses, and the executor: steps run in the run's process (see
    `market_assets/defs/bars/executor.py` for the close jobs on Kubernetes)."""
    lake = DataLakeResource(root=bound(settings.DATA_ROOT))
    return dg.Definitions(
        executor=dg.in_process_executor,
        resources={
            "stooq": _source(),
            "lake": lake,
            "io_manager": ParquetIOManager(lake=lake),
            "planning": ClosePlanningResource(
                max_symbols_per_run=bound(settings.MAX_SYMBOLS_PER_RUN),
                catch_up_sessions=bound(settings.CATCH_UP_SESSIONS),
            ),
        },
    )


def _source() -> MarketDataSource:
    """The `stooq` resource: Stooq over HTTP, or its files saved from a browser, as
    `MARKET_ASSETS_SOURCE` chooses (a load setting: it picks the resource's class)."""
    if settings.SOURCE.value().lower() == "files":
        return StooqFilesResource(folder=bound(settings.FILES))
    return StooqResource(
        base_url=bound(settings.STOOQ_BASE_URL),
        api_key=bound(settings.STOOQ_API_KEY),
        cookies=bound(settings.STOOQ_COOKIES),
    )
