"""The resources the domains share beyond the lake and the source: the `planning` resource (how the
schedules, the `close_bars` sensor and `python -m market_assets close` plan a session's runs), and
how a resource field is bound to its setting."""

import dagster as dg
from pydantic import Field

from market_assets import settings


class ClosePlanningResource(dg.ConfigurableResource):
    """How far back a tick looks for missed closes, and how many symbols one close run loads.

    Bigger runs pay Dagster's per-run cost (a process, about 3 s of CPU loading Dagster and the
    code) fewer times; a step writes each partition as it builds it, so its memory does not grow
    with them. Smaller ones spread a large universe over more processes, or pods on Kubernetes.
    The request budget is shared by all of them (the `stooq` pool), so splitting never adds load
    on the source. Figures: docs/performance.md.
    """

    max_symbols_per_run: int = Field(
        default=settings.MAX_SYMBOLS_PER_RUN.default, description=settings.MAX_SYMBOLS_PER_RUN.meaning
    )
    catch_up_sessions: int = Field(default=settings.CATCH_UP_SESSIONS.default, description=settings.CATCH_UP_SESSIONS.meaning)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse a value its setting does not allow, naming the field and the variable (a value
        bound to a variable is known only now)."""
        for name, setting in (
            ("max_symbols_per_run", settings.MAX_SYMBOLS_PER_RUN),
            ("catch_up_sessions", settings.CATCH_UP_SESSIONS),
        ):
            problem = setting.check(getattr(self, name))
            if problem:
                raise ValueError(f"{name} ({setting.env_var}={getattr(self, name)}): {problem}")


def bound(setting: settings.Setting) -> object:
    """A resource field's value: the setting's variable when it is set, so that each run resolves
    it in its own process and the launchpad names it, else the setting's default."""
    if not setting.is_set():
        return setting.default
    return dg.EnvVar.int(setting.env_var) if isinstance(setting.default, int) else dg.EnvVar(setting.env_var)
