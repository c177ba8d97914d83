"""Failures the server can inject, so clients are tested against what stooq.com really does.

Stooq rarely fails loudly: most of its failures are HTTP 200 answers whose body is not the CSV
that was asked for (a hits-limit notice, a bot challenge, a cut or renamed file). Each kind here
reproduces one of them, so the client's detection and retry logic can be exercised on purpose.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

ROUTES = ("download", "composition")
"""Route kinds a fault can target: CSV downloads (`/q/d/l/`) and composition pages (`/t/`)."""

HITS_LIMIT_BODY = "Exceeded the daily hits limit"
NO_DATA_BODY = "No data"


class FaultKind(str, Enum):
    """What a fault does to an answer."""

    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    HTTP_404 = "http_404"
    RESET = "reset"
    """Close the connection without answering."""
    SLOW = "slow"
    """Wait `delay` seconds, then answer normally."""
    HITS_LIMIT = "hits_limit"
    CHALLENGE = "challenge"
    """The proof-of-work page stooq.com sends to clients it takes for bots."""
    NO_DATA = "no_data"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    BAD_COLUMNS = "bad_columns"
    GARBLED = "garbled"


_CSV_ONLY = frozenset({FaultKind.BAD_COLUMNS, FaultKind.GARBLED})


@dataclass(frozen=True)
class Fault:
    """One failure rule: which requests it hits, how often, and how many times at most.

    `symbols` is compared case-insensitively with the downloaded symbol, or with the index name or
    Stooq id (`NDX`, `580`) of a composition page; None matches every request on `routes`.
    """

    kind: FaultKind
    symbols: frozenset[str] | None = None
    rate: float = 1.0
    count: int | None = None
    delay: float = 0.0
    routes: tuple[str, ...] = ("download",)

    def __post_init__(self) -> None:
        # Normalised here so that faults built from JSON, the CLI or Python compare and match alike.
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.symbols is not None:
            if isinstance(self.symbols, str):
                raise ValueError("symbols must be a collection of symbols, not one string")
            object.__setattr__(self, "symbols", frozenset(s.upper() for s in self.symbols))
        object.__setattr__(self, "routes", tuple(self.routes))
        if not self.routes or not set(self.routes) <= set(ROUTES):
            raise ValueError(f"routes must be a non-empty subset of {ROUTES}, got {self.routes}")
        if self.kind in _CSV_ONLY and self.routes != ("download",):
            raise ValueError(f"{self.kind.value} damages CSV cells, so it applies to downloads only")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be None or >= 0, got {self.count}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from its JSON form (the body of `POST /_admin/faults`)."""
        unknown = set(data) - {"kind", "symbols", "rate", "count", "delay", "routes"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(
            kind=data["kind"],
            symbols=data.get("symbols"),
            rate=float(data.get("rate", 1.0)),
            count=data.get("count"),
            delay=float(data.get("delay", 0.0)),
            routes=tuple(data.get("routes", ("download",))),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "symbols": None if self.symbols is None else sorted(self.symbols),
            "rate": self.rate,
            "count": self.count,
            "delay": self.delay,
            "routes": list(self.routes),
        }

    def matches(self, route: str, keys: frozenset[str]) -> bool:
        """Whether a request on `route`, identified by `keys` (upper case), is a target."""
        return route in self.routes and (self.symbols is None or not self.symbols.isdisjoint(keys))


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None


class FaultBook:
    """The active faults of one server, with their remaining counts and a seeded dice.

    One lock guards the dice and the counts, so that `count` holds exactly under concurrent
    requests and a sequential client sees the same injections on every run.
    """

    def __init__(self) -> None:
        self._armed: list[_Armed] = []
        self._random = random.Random(0)
        self._lock = threading.Lock()

    def replace(self, faults: Iterable[Fault]) -> None:
        armed = [_Armed(fault, fault.count) for fault in faults]
        with self._lock:
            self._armed = armed

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(_Armed(fault, fault.count))

    def active(self) -> list[Fault]:
        with self._lock:
            return [armed.fault for armed in self._armed]

    def pick(self, route: str, keys: frozenset[str]) -> Fault | None:
        """The first fault that fires for this request, spending one of its injections."""
        with self._lock:
            for armed in self._armed:
                if armed.remaining == 0 or not armed.fault.matches(route, keys):
                    continue
                if armed.fault.rate < 1.0 and self._random.random() >= armed.fault.rate:
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                return armed.fault
        return None


def truncate_csv(body: str) -> str:
    """Cut a CSV in the middle of its last line, as a dropped connection would."""
    body = body.rstrip("\r\n")
    start = body.rfind("\n") + 1
    return body[: start + (len(body) - start) // 2]


def truncate_html(body: str) -> str:
    """Cut a page in the middle of its last table row, so the member list silently ends early."""
    end = body.rfind("</tr>")
    start = body.rfind("<tr", 0, end)
    return body[: (start + end) // 2] if start >= 0 else body[: len(body) // 2]


def rename_close_column(body: str) -> str:
    """Rename the header's `Close` column to `Last`: the shape of a format change upstream."""
    header, sep, rest = body.partition("\r\n")
    columns = ["Last" if column == "Close" else column for column in header.split(",")]
    return ",".join(columns) + sep + rest


def garble_csv(body: str) -> str:
    """Make the Close cell of every tenth data row non-numeric (`102.5` -> `1O2.5`).

    The second character becomes the letter O, which leaves no such cell a valid number, like the
    encoding-damaged values that real feeds occasionally carry.
    """
    lines = body.split("\r\n")
    header = lines[0].split(",")
    if "Close" not in header:
        return body
    close = header.index("Close")
    for row in range(1, len(lines), 10):
        cells = lines[row].split(",")
        if len(cells) > close:
            cells[close] = cells[close][:1] + "O" + cells[close][2:]
            lines[row] = ",".join(cells)
    return "\r\n".join(lines)
