"""A partition's fingerprint: a checksum over its frame (column names, types, every value, not the
file's bytes), recorded when it is written and compared when it is read back.
Why: docs/design.md#surviving-productions-faults.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def fingerprint(frame: pd.DataFrame) -> str:
    """The SHA-256, in hex, of `frame`'s columns, their types and its rows' hashes (index left out)."""
    digest = hashlib.sha256(repr([(str(name), str(kind)) for name, kind in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
