"""A small filesystem of its own for a test's data root (tmpfs), so that it can run out of space.

Mounting needs root (or CAP_SYS_ADMIN), which CI has; elsewhere the test using it is skipped, and
under CI (`CI` set) it fails instead, like the tests that need a Debian package.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def mount_tmpfs(folder: Path, size_bytes: int) -> str | None:
    """Mount a tmpfs of `size_bytes` at `folder` (created if needed); why not, or None once mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    return (
        None if mounted.returncode == 0 else f"cannot mount a small tmpfs here ({mounted.stderr.strip() or mounted.returncode})"
    )


def unmount(folder: Path) -> None:
    """Unmount the tmpfs at `folder`, and with it what it holds."""
    subprocess.run(["umount", "-l", str(folder)], check=True)


@contextmanager
def small_volume(folder: Path, size_bytes: int) -> Iterator[Path]:
    """`folder` as a tmpfs of `size_bytes`, unmounted (with what it holds) afterwards."""
    refused = mount_tmpfs(folder, size_bytes)
    if refused:
        if os.environ.get("CI"):
            pytest.fail(refused)
        pytest.skip(refused)
    try:
        yield folder
    finally:
        unmount(folder)


def fill(folder: Path, leave_bytes: int) -> Path:
    """Take all but about `leave_bytes` of the free space of `folder`'s filesystem with one file
    (removed to give the space back)."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))
    return filler
