"""The instance-wide budget of requests in flight to Stooq: the Dagster concurrency pool `stooq`,
one slot per fetching worker (`dagster instance concurrency set stooq 6` sets the cap).

Why: docs/design.md#the-request-budget.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

POOL = "stooq"

_POLL_SECONDS = (0.25, 2.0)
"""How often a worker waiting for a slot asks again: first well under one request's latency, then
less and less often, up to the second figure. Each ask is two queries of the instance, and at the
close of a whole market dozens of workers wait while six hold the slots, each until its run has
nothing left to ask; a slot given back waits at most that long for its next holder."""

MAX_WAIT_SECONDS = 1800.0
"""How long a worker waits for a slot before its step fails, naming who holds the slots: half an
hour is far longer than any close takes, so only slots that nobody will free (held by a run whose
process died and that nothing marked failed) run into it."""


class RequestBudget:
    """Slots of `pool` for the workers of one step of one run."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        step_key: str,
        pool: str = POOL,
        max_wait: float = MAX_WAIT_SECONDS,
    ):
        self._storage = instance.event_log_storage
        self._run_id = run_id
        self._step_key = step_key
        self._pool = pool
        self._max_wait = max_wait
        self.limited = self._has_limit()

    def _has_limit(self) -> bool:
        if not self._storage.supports_global_concurrency_limits:
            return False
        if self._pool not in self._storage.get_concurrency_keys():
            self._storage.initialize_concurrency_limit_to_default(self._pool)
        return self._pool in self._storage.get_concurrency_keys()

    @property
    def limit(self) -> int | None:
        """The pool's current limit, or None when it does not restrict."""
        return self._storage.get_concurrency_info(self._pool).slot_count if self.limited else None

    @contextmanager
    def slot(self, worker: int, priority: int = 0) -> Iterator[None]:
        """Hold one slot of the pool for `worker` (waiting for one to be free) until the block ends.
        Waiting workers get free slots by `priority`, highest first, then in the order they asked;
        raises `TimeoutError`, naming the holders, after `max_wait` seconds."""
        if not self.limited:
            yield
            return
        holder = f"{self._step_key}[worker {worker}]"
        deadline = time.monotonic() + self._max_wait
        pause, longest = _POLL_SECONDS
        try:
            while not self._storage.claim_concurrency_slot(self._pool, self._run_id, holder, priority).is_claimed:
                if time.monotonic() > deadline:
                    raise TimeoutError(self._starved())
                time.sleep(pause)
                pause = min(pause * 1.5, longest)
            yield
        finally:
            self._storage.free_concurrency_slot_for_step(self._run_id, holder)

    def _starved(self) -> str:
        info = self._storage.get_concurrency_info(self._pool)
        holders = sorted({slot.run_id for slot in info.claimed_slots})
        return (
            f"waited {self._max_wait:g} s for a slot of the pool '{self._pool}' (limit "
            f"{info.slot_count}), all held by runs {', '.join(holders)}: if those runs are dead, "
            "terminate them in the UI and choose 'Free concurrency slots' in each run's menu"
        )
