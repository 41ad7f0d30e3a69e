"""The preview window, in a process of its own (run as a script by
:class:`assist.runtime.preview.PreviewWindow`; it imports nothing from ``assist``).

Why a child: OpenCV's Linux wheels draw with Qt's xcb plugin, and Qt does not
raise when the X connection breaks: it prints "The X11 connection broke" and
calls ``exit(1)``, from inside ``cv2.imshow``/``cv2.waitKey``. No check before
the call closes that race (the X server can die between the check and the
call), so the window lives here, where Qt can only end this process; the
agent sees the pipe close and runs on headless.

Protocol (binary stdin, text stdout):

* stdin, parent -> child: frames, each a 12-byte header ``<III`` (height,
  width, channels) and then height*width*channels bytes of BGR (or gray)
  ``uint8`` pixels. End of input (the agent closed the pipe, or died) ends
  the child: it never outlives the agent.
* stdout, child -> parent: one line per event: ``key N`` (a ``cv2.waitKey``
  code other than "no key"), ``ready`` (the window is open) and
  ``error TEXT`` (why the window cannot open, before exiting with code 3).
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import threading

HEADER = struct.Struct("<III")
WINDOW = "assist"
NO_WINDOW_SUPPORT = 3  # exit code: this OpenCV has no GUI backend (opencv-python-headless)


class _Latest:
    """The newest frame read from stdin (older ones are dropped: the window
    shows the present), and whether the input has ended."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.frame: object | None = None
        self.ended = False


def _read_exact(stream: object, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))  # type: ignore[attr-defined]
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _reader(latest: _Latest) -> None:
    import numpy as np

    stdin = sys.stdin.buffer
    try:
        while True:
            header = _read_exact(stdin, HEADER.size)
            if header is None:
                break
            h, w, c = HEADER.unpack(header)
            body = _read_exact(stdin, h * w * c)
            if body is None:
                break
            image = np.frombuffer(body, dtype=np.uint8).reshape((h, w, c) if c > 1 else (h, w))
            with latest.cond:
                latest.frame = image
                latest.cond.notify()
    except (OSError, ValueError):
        pass
    with latest.cond:
        latest.ended = True
        latest.cond.notify()


def _send(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    """Show frames from stdin until it ends; key presses go to stdout."""
    import cv2

    # Ctrl-C reaches the whole process group: the agent stops, then closes this
    # window; dying first here would read as a preview that failed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    latest = _Latest()
    threading.Thread(target=_reader, args=(latest,), name="frames", daemon=True).start()
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        _send("error this OpenCV has no window support")
        return NO_WINDOW_SUPPORT
    _send("ready")
    try:
        while True:
            with latest.cond:
                if latest.frame is None and not latest.ended:
                    latest.cond.wait(0.03)
                frame, latest.frame, ended = latest.frame, None, latest.ended
            if ended:
                break
            if frame is not None:
                cv2.imshow(WINDOW, frame)
            # waitKey also runs Qt's event loop: call it even without a new frame.
            key = cv2.waitKey(1 if frame is not None else 10)
            if key >= 0 and (key & 0xFF) != 0xFF:
                _send(f"key {key}")
        cv2.destroyAllWindows()
    except BrokenPipeError:  # the agent is gone
        pass
    return 0


if __name__ == "__main__":
    try:
        status = main()
        sys.stdout.flush()
    except OSError:  # BrokenPipeError: the agent is gone
        status = 0
    # Skip the interpreter's teardown (Qt's and OpenCV's too): exiting at once
    # keeps the agent's shutdown inside its one-second budget.
    os._exit(status)
