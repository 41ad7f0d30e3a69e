"""Child processes for the speech engines: started in their own process group
(so a kill also reaches whatever they started), killed and reaped without ever
raising, and the WAV player the earcons use."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

try:  # POSIX only: used to shrink the espeak-ng pipe on Linux
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

IS_POSIX = os.name == "posix"

#: Starts one child: ``spawn(args, **popen_kwargs) -> Popen``. Backends take one
#: as a parameter (default :func:`spawn`), so a test can watch or break the children.
Spawner = Callable[..., subprocess.Popen]


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """Start a child in its own process group (POSIX), so a kill also reaches
    whatever it started (pyttsx3 runs ``sh -c aplay``)."""
    if IS_POSIX:
        kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(args, **kwargs)  # noqa: S603 - fixed argument lists, never a shell


def kill_child(proc: subprocess.Popen | None, wait_s: float = 1.0) -> None:
    """Kill a child (and its process group on POSIX) and reap it; never raises."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            if IS_POSIX:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            with contextlib.suppress(OSError):
                proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=wait_s)


def find_player() -> list[str] | None:
    """A command that plays a WAV file on the sound device, or None.

    Used for earcons (espeak-ng only speaks text). paplay/pw-play go through
    the sound server, aplay straight to ALSA, afplay is macOS's own.
    """
    for cmd in (["paplay"], ["pw-play"], ["aplay", "-q"], ["afplay"]):
        if shutil.which(cmd[0]):
            return cmd
    return None


def set_pipe_size(fd: int, size: int) -> None:
    """Shrink a pipe (Linux) so the engine runs at most ~0.1 s ahead of playback."""
    if fcntl is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
