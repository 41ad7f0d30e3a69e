"""One event log, one writer: an exclusive lock on the ``--log`` file.

Two agents started with the same ``--log`` used to both open it with "w" and
interleave their lines (invalid JSON, lost ``started`` events). Now the file is
opened *without* truncation, locked without waiting, and only then truncated,
so a second run that loses the race cannot damage the first run's log: it gets
:class:`LogInUse` and the CLI exits 2 with "log PATH is in use by another run
(pid N)".

Locks: ``fcntl.flock`` on Linux and macOS, ``msvcrt.locking`` on Windows. Both
are released by the OS when the process dies, so a crash never leaves a stale
lock. The holder's pid goes into a sidecar file ``PATH.pid`` (written after
the lock is taken, removed on close; a stale one left by a crash is simply
overwritten by the next run). The sidecar was chosen over reading the holder's
first ``started`` line because that line is written only after the models and
the source are found, seconds after the lock is taken. Only regular files are
locked: ``/dev/null`` or a FIFO may be shared by any number of runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import TextIO


class LogInUse(Exception):
    """Another live process holds the log file; ``str(exc)`` is the user's line."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"log {path} is in use by another run ({who}); stop that run or choose another --log path")
        self.path = path
        self.pid = pid


def pid_file(path: Path) -> Path:
    """The sidecar that names the process holding ``path``."""
    return path.with_name(path.name + ".pid")


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; False when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without locks (some network mounts): write unlocked, as before
    return True


def _holder_pid(path: Path) -> int | None:
    try:
        text = pid_file(path).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def open_locked_log(path: Path) -> tuple[TextIO, bool]:
    """Open ``path`` for a new log: lock it, then truncate it.

    Returns (text file positioned at 0, whether a sidecar pid file was
    written). Raises :class:`LogInUse` when another run holds it and OSError
    when it cannot be opened at all.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        wrote_pid = False
        if regular:
            if not _try_lock(fd):
                raise LogInUse(path, _holder_pid(path))
            os.ftruncate(fd, 0)
            with contextlib.suppress(OSError):  # a read-only folder: lock without the sidecar
                pid_file(path).write_text(f"{os.getpid()}\n", encoding="ascii")
                wrote_pid = True
        fh = os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    return fh, wrote_pid


def release_pid_file(path: Path) -> None:
    """Remove the sidecar if it still names this process (best effort)."""
    if _holder_pid(path) == os.getpid():
        with contextlib.suppress(OSError):
            pid_file(path).unlink()
