"""Is a display available for the preview window?

OpenCV's Linux wheels draw windows with Qt5 through its X11 (xcb) plugin only.
Without a reachable X server Qt does not raise: it prints "could not connect
to display" and calls ``abort()`` (exit 134), taking the buffered console lines
and the final ``stopped`` event with it. So the question must be answered
before the first ``cv2.imshow``, and cheaply: an environment check plus one
socket connect to the X server (about 0.1 ms locally), which is also what lets
the preview notice a display that went away (SSH session closed, monitor
unplugged from a Jetson's X server) before Qt touches the dead connection.

macOS and Windows always have a window server for a logged-in user: they are
assumed to have a display.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# Qt's font and platform chatter ("QFontDatabase: Cannot find font directory",
# "qt.qpa.xcb: ...") is noise to a user of the preview; a rule the user set
# (QT_LOGGING_RULES) wins.
# QFontDatabase's "Cannot find font directory" has no category ("default").
QT_QUIET_RULES = "qt.qpa.*=false;qt.text.font.*=false;default.warning=false;*.debug=false"


@dataclass(frozen=True)
class DisplayCheck:
    """The answer: ``ok``, and when not, ``reason`` (for the one console line)."""

    ok: bool
    reason: str = ""


def _x11_socket_target(display: str) -> tuple[int, str | tuple[str, int]] | None:
    """(address family, address) of the X server named by ``$DISPLAY``, or None
    when the value cannot be parsed. ``:0`` / ``unix:0`` -> the local socket
    /tmp/.X11-unix/X0; ``host:10.0`` -> TCP port 6010 (SSH X forwarding)."""
    host, sep, rest = display.rpartition(":")
    if not sep:
        return None
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return None
    if host in ("", "unix") or host.startswith("/"):
        if host.startswith("/"):  # launchd-style path (XQuartz): the socket is the whole value
            return socket.AF_UNIX, display
        return socket.AF_UNIX, f"/tmp/.X11-unix/X{int(number)}"
    return socket.AF_INET, (host, 6000 + int(number))


def probe_x11(display: str, timeout_s: float = 0.5) -> bool:
    """True when an X server accepts a connection at ``display``."""
    target = _x11_socket_target(display)
    if target is None:
        return False
    family, address = target
    # Linux X servers also listen on the abstract socket "@/tmp/.X11-unix/X0";
    # the file socket is the one every server creates.
    if family == socket.AF_UNIX and not Path(str(address)).exists():
        return False
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(address)
        return True
    except OSError:
        return False


def _qt_has_wayland_plugin() -> bool:
    """True when OpenCV's bundled Qt can draw on Wayland (the PyPI wheels ship xcb only)."""
    try:
        import cv2
    except ImportError:
        return False
    plugins = Path(cv2.__file__).parent / "qt" / "plugins" / "platforms"
    return any(p.name.startswith("libqwayland") for p in plugins.glob("*")) if plugins.is_dir() else True


def check_display(env: dict[str, str] | None = None, platform: str | None = None) -> DisplayCheck:
    """Whether a preview window can be opened here, decided without opening one."""
    env = dict(os.environ) if env is None else env
    platform = platform or sys.platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return DisplayCheck(True)
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa.startswith("offscreen"):
        return DisplayCheck(True)  # the user asked for windows drawn nowhere: nothing can abort
    display = env.get("DISPLAY", "")
    if display:
        if probe_x11(display):
            return DisplayCheck(True)
        return DisplayCheck(False, f"the X display {display} does not answer")
    wayland = env.get("WAYLAND_DISPLAY", "")
    if wayland:
        runtime_dir = env.get("XDG_RUNTIME_DIR", "")
        path = Path(wayland) if wayland.startswith("/") else Path(runtime_dir) / wayland
        if not path.exists():
            return DisplayCheck(False, f"the Wayland display {wayland} does not answer")
        if _qt_has_wayland_plugin():
            return DisplayCheck(True)
        return DisplayCheck(False, "Wayland without XWayland (DISPLAY is unset; OpenCV's windows need X11)")
    return DisplayCheck(False, "DISPLAY and WAYLAND_DISPLAY are unset")


def still_there(env: dict[str, str] | None = None) -> bool:
    """Cheap re-check during the run (one socket connect): False once the
    display has gone away, so the preview stops before Qt sees it die."""
    return check_display(env).ok


def quiet_qt() -> None:
    """Silence Qt's font and platform warnings unless the user set their own rules."""
    os.environ.setdefault("QT_LOGGING_RULES", QT_QUIET_RULES)


def headless_or_preview(headless: bool, stream: TextIO | None = None) -> bool:
    """The headless setting to run with: as asked, or True when no display is
    available (one console line says so, and why), so Qt never aborts the run."""
    if headless:
        return True
    check = check_display()
    if check.ok:
        quiet_qt()
        return False
    print(f"no display ({check.reason}): running headless; --headless skips this check",
          file=stream or sys.stderr, flush=True)
    return True


class DisplayWatch:
    """Re-checks the display during the preview, at most every ``every_s``
    (one socket connect, about 0.1 ms), so a display that goes away mid-run is
    noticed before Qt processes events on the dead connection: Qt then prints
    "The X11 connection broke" and exits the process (exit 1, seen with Xvfb
    killed mid-run). The default checks before every frame shown, leaving
    only the instant between the check and ``waitKey``. Once lost, it stays
    lost: the run goes on headless."""

    def __init__(self, every_s: float = 0.0) -> None:
        self.every_s = every_s
        self.lost = False
        self._next = 0.0

    def ok(self) -> bool:
        """False once the display has gone away."""
        if self.lost:
            return False
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            self.lost = not still_there()
        return not self.lost
