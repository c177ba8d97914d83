"""One close job per index: the session's bars of its constituents (on its exchange's bars assets), in
one run per block of symbols; and `verify_bars`, the bars files of an index's session read back."""

from __future__ import annotations

import dagster as dg

from market_assets.defs.bars.assets import bars_assets
from market_assets.defs.bars.executor import close_executor
from market_assets.defs.bars.integrity import verify_bars_files
from market_assets.defs.bars.planning import close_job_name
from market_assets.defs.runs import INDEX_TAG
from market_assets.sources.indices import followed_indices

close_jobs = {
    name: dg.define_asset_job(
        name=close_job_name(name),
        selection=dg.AssetSelection.assets(bars_assets[stock_index.calendar]),
        tags={INDEX_TAG: name},
        # The step in a pod of its own on Kubernetes with MARKET_ASSETS_EXECUTOR=k8s; by default
        # (None) the in-process executor of the Definitions, as for every other job.
        executor_def=close_executor(),
        description=(
            f"Daily, weekly and monthly bars of the {stock_index.title} constituents for one "
            "session, and the adjustments their snapshots made to the past, in one run (a "
            "partition range over the session's constituents), in one step that resamples each "
            "symbol's snapshot as soon as it is fetched."
        ),
    )
    for name, stock_index in followed_indices().items()
}


@dg.job(
    description=(
        "Read back the bars files of an index's members for a session, compare each with what was "
        "written and judge it again (the valid_bars check, reported on each partition); fails naming "
        "the damaged ones."
    )
)
def verify_bars() -> None:
    verify_bars_files()
