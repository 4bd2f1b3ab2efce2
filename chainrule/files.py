"""Files the application writes: atomic replacement (``layers.saving.atomic_write``), the cleanup of what a
kill left behind, and the lock that keeps one writer per run folder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from chainrule.config import ConfigError
from layers.saving import atomic_write  # noqa: F401  (the application imports it from here)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete what a kill during an atomic write left behind (``.NAME.*.tmp``); nothing else is touched."""
    if folder.is_dir():
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)


class RunLock:
    """A run folder's lock: an exclusive ``flock`` on its ``.lock``, which holds the owner's process id. The
    system gives the lock back when its process ends, however it ends, so a killed run's lock is free at
    once; a lock held by another process is a ConfigError naming it.

    ``with RunLock(run_dir):`` holds it for the block; ``acquire()`` and ``release()`` for longer spans."""

    NAME = ".lock"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.path = run_dir, run_dir / self.NAME
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> RunLock:
        """Take the lock (a no-op while this object holds it)."""
        for _ in range(10):
            if self.fd is not None:
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by a live process
                os.close(fd)
                raise ConfigError(f"run folder {str(self.run_dir)!r} is in use by {self.holder()} (see its "
                                  f"{self.NAME}); wait for it to finish or stop it") from None
            if not same_file(self.path, fd):  # its holder removed it between our open and our lock: again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self.fd = fd
        if self.fd is None:
            raise ConfigError(f"run folder {str(self.run_dir)!r}: could not take its {self.NAME}")
        return self

    def release(self) -> None:
        """Give the lock back, when held: the file is removed, then the lock released."""
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    def held(self) -> bool:
        """Whether a process holds the lock now (without taking it: a shared lock tried and given back)."""
        if not self.path.is_file():
            return False
        with open(self.path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False

    def holder(self) -> str:
        """Who holds the lock, in words: "process 123" when its file names a live process, or "another
        process"."""
        try:
            pid: int | None = int(self.path.read_text().strip())
        except (OSError, ValueError):
            pid = None
        return f"process {pid}" if pid is not None and pid != os.getpid() and process_alive(pid) \
            else "another process"


def same_file(path: Path, fd: int) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True
