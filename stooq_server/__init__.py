"""A Stooq-compatible HTTP server and a synthetic data generator for offline tests and demos."""

from .faults import Fault, FaultKind
from .server import StooqServer
from .synthetic import SyntheticUniverse, generate_synthetic

__all__ = ["Fault", "FaultKind", "StooqServer", "SyntheticUniverse", "generate_synthetic"]
