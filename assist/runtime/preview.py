"""The agent's side of the preview window, which runs in a child process
(:mod:`assist.runtime.preview_child`).

Why a child: Qt's xcb plugin (OpenCV's window backend on Linux) ends the
process with ``exit(1)`` when the X connection breaks, from inside
``cv2.imshow``/``cv2.waitKey``; checking the display before each frame leaves
a race (the server can die between the check and the call). In a child, a
dead display, a Qt abort or a kill ends the child only: the agent notices
(:attr:`PreviewWindow.ended`), says so once and runs on headless.

Frames go down a pipe raw (a 12-byte header, then the pixels): encoding JPEG
would cost the agent more CPU than the copy. Latest frame wins: :meth:`show`
never blocks; a sender thread writes the newest frame when the pipe takes it,
and frames replaced before they were sent are counted in :attr:`dropped`.
Key presses come back as lines and go to ``on_key`` (the control channel).
The child exits when its stdin closes, so it never outlives the agent.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assist.runtime.display import check_display
from assist.runtime.preview_child import HEADER, NO_WINDOW_SUPPORT

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("preview_child.py")


class PreviewWindow:
    """The preview window's child process: :meth:`show` frames, keys to ``on_key``."""

    def __init__(self, on_key: Callable[[int], None]) -> None:
        self.on_key = on_key
        self.shown = 0
        self.dropped = 0
        self.error: str | None = None  # the child's own reason ("this OpenCV has no window support")
        self._cond = threading.Condition()
        self._pending: np.ndarray | None = None
        self._closing = False
        self._broken = threading.Event()  # a pipe end closed: the child is gone (or going)
        # Run as a script, not "-m": the child imports only cv2 and numpy (fast
        # start, nothing of the agent), wherever the agent was started from.
        # Its stderr (Qt's "The X11 connection broke" and font chatter) is noise
        # to a user: the agent prints its own one line.
        self.proc = subprocess.Popen([sys.executable, str(CHILD)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._sender = threading.Thread(target=self._send_loop, name="preview-send", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="preview-keys", daemon=True)
        self._sender.start()
        self._reader.start()

    @property
    def ended(self) -> bool:
        """True once the child has gone (display lost, Qt exit, killed, no window support)."""
        return self._broken.is_set() or self.proc.poll() is not None

    def show(self, image: np.ndarray) -> None:
        """Hand a frame to the window; never blocks (an unsent older frame is dropped)."""
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = np.ascontiguousarray(image, dtype=np.uint8)
            self._cond.notify()

    def close(self) -> None:
        """Begin closing: the pipe closes, so the child destroys its window and exits."""
        with self._cond:
            self._closing = True
            self._cond.notify()

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the child to end after :meth:`close`, then
        kill it; returns its exit code (None if it could not be reaped)."""
        self.close()
        deadline = time.monotonic() + timeout
        self._sender.join(timeout)  # it closes the pipe (unless stuck writing to a hung child)
        try:
            return self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                return self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                return None
        finally:
            log.debug("preview: %d frames shown, %d dropped", self.shown, self.dropped)

    def why_ended(self) -> tuple[str, bool]:
        """Why the child ended, for the console line, and whether the display is
        the cause (gone, or an OpenCV without window support)."""
        if self.error:  # the child said why
            return self.error, True
        code = self.proc.poll()
        # Qt exits with 1 on a broken X connection, maybe before the server has
        # closed its socket: give the check half a second to see it go.
        tries = 10 if code is not None and code > 0 else 1
        for attempt in range(tries):
            if not check_display().ok:
                return "the display went away", True
            if attempt + 1 < tries:
                time.sleep(0.05)
        return self.reason(), False

    def reason(self) -> str:
        """How the child ended, in words."""
        if self.error:
            return self.error
        code = self.proc.poll()
        if code is None:
            return "the preview window stopped answering"
        if code < 0:
            return f"the preview window was ended by signal {-code}"
        return f"the preview window exited with code {code}"

    @property
    def no_window_support(self) -> bool:
        """True when the child found an OpenCV without a GUI backend."""
        return self.proc.poll() == NO_WINDOW_SUPPORT

    def _send_loop(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        break
                    image, self._pending = self._pending, None
                h, w = image.shape[:2]
                c = image.shape[2] if image.ndim == 3 else 1
                stdin.write(HEADER.pack(h, w, c))
                stdin.write(memoryview(image).cast("B"))
                stdin.flush()
                self.shown += 1
        except (OSError, ValueError):  # BrokenPipeError: the child is gone
            self._broken.set()
        with contextlib.suppress(OSError):
            stdin.close()

    def _read_loop(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for raw in stdout:
            word, _, rest = raw.decode("utf-8", "replace").strip().partition(" ")
            if word == "key" and rest.lstrip("-").isdigit():
                self.on_key(int(rest))
            elif word == "error":
                self.error = rest
        self._broken.set()  # end of output: the child has ended
