"""`DataLakeResource`: the lake as a Dagster resource, for the IO manager and the assets that look
at what is stored."""

import dagster as dg
from pydantic import Field, PrivateAttr

from market_assets import settings
from market_assets.lake.store import ParquetStore


class DataLakeResource(dg.ConfigurableResource):
    """Where partitions are stored: shared by the IO manager and the assets that inspect stored data."""

    root: str = Field(default=settings.DATA_ROOT.default, description=settings.DATA_ROOT.meaning)

    _store: ParquetStore = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = ParquetStore(self.root)

    @property
    def store(self) -> ParquetStore:
        return self._store
