"""A partition's fingerprint: a checksum of what its file holds, recorded when it is written and
compared when it is read back, so that a file truncated or overwritten afterwards is found.

It is taken over the frame (column names, types and every value), not over the file's bytes, so
it stays true of a partition whose file is rewritten with the same rows: compaction rebuilds a
snapshot exactly from a newer one, and a forced re-run may write the same bars again.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def fingerprint(frame: pd.DataFrame) -> str:
    """The SHA-256, in hex, of `frame`'s columns, their types and its rows' hashes (index left out)."""
    digest = hashlib.sha256(repr([(str(name), str(kind)) for name, kind in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
