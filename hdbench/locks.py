"""Inter-process locks for run directories and cached jobs (``filelock``, released by the OS
when the holder dies, so a killed process never leaves a stale lock).

A lock file holds the holder's process id, for the error message of whoever finds it taken.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from filelock import FileLock, Timeout

from hdbench.errors import HdbenchError

_LOCKS: dict[str, FileLock] = {}


class LockHeld(HdbenchError):
    """Another process holds the lock."""


def _holder(path: Path) -> str:
    try:
        text = Path(str(path) + ".pid").read_text().strip()
    except OSError:
        return "another process"
    return f"process {text}" if text.isdigit() else "another process"


class ProcessLock:
    """An exclusive lock on ``path`` (a ``.lock`` file), held by this process.

    ``acquire(timeout=0)`` fails at once with :class:`LockHeld` (naming the holder) when another
    process holds it; ``timeout=None`` waits. Re-entrant within one process.
    """

    def __init__(self, path, what: str = ""):
        self.path = Path(path)
        self.what = what or str(self.path)
        key = str(self.path.resolve()) if self.path.parent.exists() else str(self.path)
        # One FileLock per path and process: flock() conflicts between two descriptors of the
        # same process, so a second lock object on the same file would wait for the first.
        self._lock = _LOCKS.setdefault(key, FileLock(str(self.path), thread_local=False))

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def acquire(self, timeout: float | None = 0) -> ProcessLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LockHeld(f"{self.what} is in use by {_holder(self.path)}; wait for it to "
                           "finish or stop it") from None
        with contextlib.suppress(OSError):
            Path(str(self.path) + ".pid").write_text(f"{os.getpid()}\n")
        return self

    def release(self) -> None:
        if self._lock.is_locked and self._lock.lock_counter == 1:
            with contextlib.suppress(OSError):
                Path(str(self.path) + ".pid").unlink()
        self._lock.release()

    def __enter__(self) -> ProcessLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
