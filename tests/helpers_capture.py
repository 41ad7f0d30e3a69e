"""Test helpers for capture: scriptable fake cameras, a fake-time clock, a
local MJPEG-over-HTTP server, and real video/image writers whose frames carry
their own index (so order and completeness can be checked after decoding).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from assist.capture.errors import SourceError
from assist.config import CameraConfig
from helpers_wait import wait_for

# ----------------------------------------------------------------- frame codes
CODE_BITS = 10
CODE_CELL_PX = 16  # big black/white cells survive lossy codecs


def coded_frame(n: int, size: tuple[int, int] = (160, 120), shade: int = 90) -> np.ndarray:
    """A BGR frame whose top row of 16-px cells spells ``n`` in binary.

    The rest is a mid-grey gradient (never black), so a placeholder black frame
    could never pass for a real one.
    """
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.linspace(shade, shade + 60, w, dtype=np.uint8)[None, :, None]
    for bit in range(CODE_BITS):
        x0 = bit * CODE_CELL_PX
        img[:CODE_CELL_PX, x0:x0 + CODE_CELL_PX] = 255 if (n >> bit) & 1 else 0
    return img


def read_code(img: np.ndarray) -> int:
    """The number written by :func:`coded_frame` (robust to codec noise and scaling)."""
    h, w = img.shape[:2]
    cell = CODE_CELL_PX * w / 160.0  # frames may have been resized
    n = 0
    for bit in range(CODE_BITS):
        x0, x1 = int(bit * cell + cell * 0.25), int((bit + 1) * cell - cell * 0.25)
        y1 = max(1, int(cell * 0.75))
        if img[int(cell * 0.25):y1, x0:x1].mean() > 127:
            n |= 1 << bit
    return n


def write_coded_video(path: Path, n_frames: int, fps: float, fourcc: str,
                      size: tuple[int, int] = (160, 120)) -> Path:
    """A real video file (OpenCV VideoWriter) whose frame i shows code i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"VideoWriter cannot write {fourcc} to {path}"
    for i in range(n_frames):
        writer.write(coded_frame(i, size))
    writer.release()
    return path


def fast_config(**overrides: float) -> CameraConfig:
    """CameraConfig with short delays so tests finish quickly."""
    cfg = CameraConfig(stall_timeout_s=0.3, reconnect_initial_s=0.05, reconnect_max_s=0.2,
                       reconnect_attempts=0, open_timeout_s=2.0, status_interval_s=0.0)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


wait_until = wait_for  # the name the capture tests use


# ------------------------------------------------------------------- fake time
class JumpClock:
    """Monotonic time where ``sleep`` jumps ahead instead of waiting.

    Real time still flows (threads wait for real), but every injected sleep
    adds its duration at once, so backoff schedules of many seconds run in
    milliseconds while the loop sees the right times.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._offset += max(0.0, seconds)
        time.sleep(0.001)


# -------------------------------------------------------------- fake cameras
_release = threading.Event()  # set at teardown: frees reads and opens that hang for ever


def release_hung() -> None:
    """Free every hung fake read/open of the current test, and arm a fresh
    event for the next test (call at teardown so no thread outlives its test)."""
    global _release
    _release.set()
    _release = threading.Event()


class FakeSource:
    """A scriptable source.

    ``script``: actions for successive reads, then ``then`` for ever:
    ``"frame"`` (a coded frame, code = running count), ``"fail"`` (None),
    ``"empty"`` (a 0x0 array: a broken frame), ``"end"`` (None and
    ``ended=True``), ``"block"`` (blocks until :meth:`interrupt`),
    ``"hang"`` (blocks and ignores interrupt: a wedged driver).
    ``delay_s`` pauses each frame read (a camera's frame period).
    """

    def __init__(self, script: Iterable[str] = (), then: str = "frame", *, is_live: bool = True,
                 fps: float | None = None, delay_s: float = 0.0, name: str = "fake", start_code: int = 0) -> None:
        self._script = list(script)
        self._then = then
        self.is_live = is_live
        self.fps = fps
        self.delay_s = delay_s
        self.name = name
        self.ended = False
        self.code = start_code
        self.reads = 0
        self.closed = False
        self.close_thread: str | None = None
        self.read_threads: set[str] = set()
        self.blocked = threading.Event()  # set while a read is blocked
        self._interrupt = threading.Event()
        self._release = _release

    def read(self) -> np.ndarray | None:
        self.reads += 1
        self.read_threads.add(threading.current_thread().name)
        action = self._script.pop(0) if self._script else self._then
        if action == "frame":
            if self.delay_s:
                time.sleep(self.delay_s)
            img = coded_frame(self.code)
            self.code += 1
            return img
        if action == "fail":
            return None
        if action == "empty":
            return np.empty((0, 0, 3), np.uint8)
        if action == "end":
            self.ended = True
            return None
        if action in ("block", "hang"):
            self.blocked.set()
            if action == "hang":
                self._release.wait()
            else:
                while not (self._interrupt.wait(0.02) or self._release.is_set()):
                    pass
            self.blocked.clear()
            return None
        raise ValueError(action)

    def close(self) -> None:
        self.closed = True
        self.close_thread = threading.current_thread().name

    def interrupt(self) -> None:
        self._interrupt.set()


class FakeFactory:
    """Hands out prepared results in order (a source, an exception to raise,
    or ``"hang"`` to block for ever); the last one repeats. Records the clock
    time of each call."""

    def __init__(self, results: list[object], clock: Callable[[], float] = time.monotonic) -> None:
        self._results = list(results)
        self._clock = clock
        self.calls: list[float] = []
        self.opened: list[FakeSource] = []

    def __call__(self) -> FakeSource:
        self.calls.append(self._clock())
        item = self._results.pop(0) if len(self._results) > 1 else self._results[0]
        if callable(item) and not isinstance(item, FakeSource):
            item = item()
        if item == "hang":
            _release.wait()
            raise SourceError("released")
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, FakeSource)
        self.opened.append(item)
        return item


# ---------------------------------------------------------------- MJPEG server
class MjpegServer:
    """A local MJPEG-over-HTTP server (multipart/x-mixed-replace), like an IP
    camera. ``stop`` drops every client at once (the camera going away);
    ``start`` again serves on the same port. ``stalled`` (an Event) keeps every
    connection open but sends nothing while it is set (a hung camera).
    Bounded: each client stream ends by itself after ``max_s`` seconds, and
    ``stop`` is idempotent.
    """

    def __init__(self, fps: float = 20.0, max_s: float = 30.0, size: tuple[int, int] = (160, 120)) -> None:
        self.fps = fps
        self.max_s = max_s
        self.size = size
        self.port = _free_port()
        self.frames_sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.stalled = threading.Event()  # set: clients stay connected but get no frames

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        assert self._server is None
        self._stop = threading.Event()
        stop, owner = self._stop, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                t_end = time.monotonic() + owner.max_s
                while not stop.is_set() and time.monotonic() < t_end:
                    if owner.stalled.is_set():  # connection open, nothing sent: a hung camera
                        stop.wait(0.02)
                        continue
                    ok, buf = cv2.imencode(".jpg", coded_frame(owner.frames_sent, owner.size))
                    data = buf.tobytes()
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    owner.frames_sent += 1
                    stop.wait(1.0 / owner.fps)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()  # handler loops end, closing their connections
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts TCP connections and never answers: a URL that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def closed_port() -> int:
    """A localhost port with nothing listening (connection refused)."""
    return _free_port()
