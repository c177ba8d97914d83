"""What can go wrong when writing the lake, and whether a retry can help. Every error but
`ReadBackError` leaves the partition's previous file as it was.
Why: docs/design.md#surviving-productions-faults.
"""

from __future__ import annotations

import errno

_FULL = {errno.ENOSPC, errno.EDQUOT}
_REFUSED = {errno.EACCES, errno.EPERM, errno.EROFS}


class ReadBackError(Exception):
    """A file just written does not read back as what was written (a disk or a store that lost
    or changed the bytes, another writer): writing it again may help."""


class LakeWriteError(Exception):
    """A partition's file could not be written. `retryable` says whether asking again soon can
    help: a timeout or a 5xx of an object store may pass, a full or read-only volume does not."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        self.cause = cause
        number = getattr(cause, "errno", None)
        local = "://" not in path
        if isinstance(cause, ReadBackError):
            self.retryable = True
            advice = "The file is written again when the step is retried."
        elif number in _FULL:
            self.retryable = False
            advice = "The volume is full: free space or grow it, then re-run. Retrying now will not help."
        elif local and number in _REFUSED:
            self.retryable = False
            advice = "The data root is not writable by this user. Retrying will not help."
        elif local:
            self.retryable = False
            advice = "Retrying will not help until the cause is removed."
        else:
            self.retryable = True
            advice = "The object store refused the upload or did not answer in time: retrying may help."
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        if isinstance(cause, ReadBackError):
            super().__init__(f"{path} was written, but {reason}. {advice}")
            return
        super().__init__(
            f"cannot write {path}: {reason}. {advice} Nothing stored before was changed: "
            "the partition's previous file, if any, is still in place."
        )
