"""Is a display available for the preview window?

OpenCV's Linux wheels draw windows with Qt5 through its X11 (xcb) plugin only.
Without a reachable X server Qt does not raise: it prints "could not connect
to display" and calls ``abort()`` (exit 134), taking the buffered console lines
and the final ``stopped`` event with it. So the question must be answered
before the first ``cv2.imshow``, and cheaply: an environment check plus one
socket connect to the X server (about 0.1 ms locally).

A display that goes away mid-run (SSH session closed, monitor unplugged from a
Jetson's X server) cannot be caught by checking before each frame: the server
can die between the check and the call, and Qt then exits the process. The
window therefore runs in a child process (:mod:`assist.runtime.preview`); this
check only names the cause once that child has ended.

macOS and Windows always have a window server for a logged-in user: they are
assumed to have a display.
"""

from __future__ import annotations

import os
import socket
import sys
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


def _qt_has_plugin(prefix: str) -> bool:
    """True when OpenCV's bundled Qt has the platform plugin ``prefix`` (``libqwayland``,
    ``libqoffscreen``); the PyPI wheels ship xcb only. A build without a bundled Qt
    (system OpenCV, GTK) is given the benefit of the doubt."""
    try:
        import cv2
    except ImportError:
        return False
    plugins = Path(cv2.__file__).parent / "qt" / "plugins" / "platforms"
    return any(p.name.startswith(prefix) for p in plugins.glob("*")) if plugins.is_dir() else True


def check_display(env: dict[str, str] | None = None, platform: str | None = None) -> DisplayCheck:
    """Whether a preview window can be opened here, decided without opening one."""
    env = dict(os.environ) if env is None else env
    platform = platform or sys.platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return DisplayCheck(True)
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa.startswith("offscreen"):
        # The user asked for windows drawn nowhere: fine where Qt can, but the PyPI wheel's Qt
        # has no offscreen plugin and the preview would die at its first frame.
        if _qt_has_plugin("libqoffscreen"):
            return DisplayCheck(True)
        return DisplayCheck(False, "QT_QPA_PLATFORM=offscreen, but OpenCV's Qt has no offscreen plugin")
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
        if _qt_has_plugin("libqwayland"):
            return DisplayCheck(True)
        return DisplayCheck(False, "Wayland without XWayland (DISPLAY is unset; OpenCV's windows need X11)")
    return DisplayCheck(False, "DISPLAY and WAYLAND_DISPLAY are unset")


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
