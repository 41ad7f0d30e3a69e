"""Frame sources: camera (index or device path), video file, stream URL, one
image, a folder of images, and the built-in demo clip.

A source only *reads*; it does not pace, normalise, stamp or watch itself. The
capture loop (:mod:`assist.capture.loop`) owns one source at a time in one thread
and does all of that, so fakes for tests stay tiny.

Opening is the only place where a user mistake shows up as an error: every
failure becomes a :class:`SourceError` with a one-line message naming the
source and what to check (the CLI prints it and exits 3), and opening never
takes longer than ``camera.open_timeout_s``, because OpenCV can block for a
long time on a dead URL or a wedged camera.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from assist.capture import FrameSource
from assist.capture.errors import SourceError
from assist.capture.imaging import IMAGE_EXTENSIONS, decode_image_file
from assist.config import CameraConfig

log = logging.getLogger(__name__)

SOURCE_KINDS = ("camera", "video", "url", "image", "images", "demo")
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

# Files report nonsense frame rates now and then (0, 1000, NaN); a file then
# plays at this rate rather than as fast as it decodes.
DEFAULT_FILE_FPS = 25.0

T = TypeVar("T")


@dataclass(frozen=True)
class SourceSpec:
    """What to open: ``kind`` is one of :data:`SOURCE_KINDS`.

    ``value``: camera index (int or digits) or device path for ``camera``; a
    path for ``video``/``image``/``images``; a URL for ``url`` (a ``video``
    value with a URL scheme is treated as a URL too); ignored for ``demo``
    (or a path where the demo clip is written).
    """

    kind: str
    value: str | int | Path | None = None

    def describe(self) -> str:
        """Short human name of the source for messages and the log."""
        if self.kind == "demo":
            return "demo clip"
        if self.kind == "camera":
            return f"camera {self.value}"
        return f"{self.kind} {self.value}"


def is_url(value: object) -> bool:
    """True for ``scheme://...`` strings with a streaming scheme."""
    if not isinstance(value, str):
        return False
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", value)
    return bool(m) and m.group(1).lower() in URL_SCHEMES


def redact_url(url: str) -> str:
    """Hide a password in ``scheme://user:pass@host`` before it is logged."""
    return re.sub(r"(://[^/:@]+):[^/@]*@", r"\1:***@", url)


def call_with_timeout(fn: Callable[[], T], timeout_s: float, what: str,
                      cleanup: Callable[[T], None] | None = None,
                      cancel: threading.Event | None = None) -> T:
    """Run ``fn`` in a daemon thread and wait at most ``timeout_s`` seconds.

    On timeout (or when ``cancel`` is set) raise SourceError naming ``what``
    and abandon the thread: if ``fn`` returns later, ``cleanup`` releases its
    result so a late-opening camera is not left open. Exceptions from ``fn``
    are re-raised here. Trade-off: an abandoned thread may linger inside
    OpenCV until its own timeout, but the caller is never stuck.
    """
    lock = threading.Lock()
    state: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            with lock:
                state["error"] = exc
            done.set()
            return
        with lock:
            abandoned = state.get("abandoned", False)
            if not abandoned:
                state["value"] = value
        done.set()
        if abandoned and cleanup is not None:
            try:
                cleanup(value)
            except Exception:  # noqa: BLE001 - best effort on an abandoned result
                log.debug("cleanup of abandoned %s failed", what, exc_info=True)

    thread = threading.Thread(target=run, name=f"open-{what}"[:40], daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
            break
    with lock:
        if "error" in state:
            raise state["error"]  # type: ignore[misc]
        if "value" in state:
            return state["value"]  # type: ignore[return-value]
        state["abandoned"] = True
    if cancel is not None and cancel.is_set():
        raise SourceError(f"{what}: opening cancelled")
    raise SourceError(f"{what}: no answer within {timeout_s:g} s (check it is connected and reachable; "
                      "camera.open_timeout_s sets this limit)")


def quiet_opencv_logs() -> None:
    """Silence OpenCV's and FFmpeg's own console chatter ("[tcp @ 0x...]
    Connection refused", "[ WARN:0@0.01] global cap.cpp ...") so the user sees
    only our one-line messages. Must run before FFmpeg's first use (it reads
    the level once). Variables the user set themselves win, so
    ``OPENCV_FFMPEG_LOGLEVEL=32 OPENCV_LOG_LEVEL=INFO`` brings them back.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _sane_fps(value: float) -> float | None:
    return float(value) if value and np.isfinite(value) and 0.1 <= value <= 1000.0 else None


class CvCaptureSource:
    """A cv2.VideoCapture: camera, video file or stream URL.

    The first frame is read while opening (so a file or stream that opens but
    decodes nothing is reported at start, exit 3) and handed out by the first
    :meth:`read`.
    """

    def __init__(self, cap: cv2.VideoCapture, name: str, *, is_live: bool, first: np.ndarray) -> None:
        self._cap: cv2.VideoCapture | None = cap
        self.name = name
        self.is_live = is_live
        self.ended = False
        fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS))
        self.fps = fps if fps is not None or is_live else DEFAULT_FILE_FPS
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count: int | None = int(count) if not is_live and count and count > 0 else None
        self._pending: np.ndarray | None = first
        self._fails = 0
        self._pos = self._position()

    def _position(self) -> float:
        cap = self._cap
        return cap.get(cv2.CAP_PROP_POS_FRAMES) if cap is not None else -1.0

    def read(self) -> np.ndarray | None:
        """Next frame; None on a failed read (``ended`` says whether for good)."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        cap = self._cap
        if cap is None or self.ended:
            self.ended = True
            return None
        try:
            ok, frame = cap.read()
        except cv2.error as exc:
            log.debug("%s: read raised %s", self.name, exc)
            ok, frame = False, None
        if ok and frame is not None and frame.size:
            self._fails = 0
            self._pos = self._position()
            return frame
        self._fails += 1
        if self.is_live:
            # FFmpeg streams return False at once and for ever after the peer
            # closes; cameras may miss a frame now and then. A few failures in
            # a row mean the loop should reopen (it stays quiet about it until
            # camera.stall_timeout_s has passed without a frame).
            self.ended = self._fails >= 3
            return None
        pos = self._position()
        at_end = self.frame_count is not None and pos >= self.frame_count
        stuck = pos <= self._pos  # the demuxer made no progress: end or truncation
        if at_end or stuck or self._fails >= 50:
            self.ended = True
            if self.frame_count is not None and pos < self.frame_count - 1:
                log.warning("%s ended early at frame %d of %d (truncated file?)", self.name, int(pos),
                            self.frame_count)
        self._pos = max(self._pos, pos)
        return None

    def close(self) -> None:
        """Release the capture (idempotent)."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def interrupt(self) -> None:
        """No safe way to unblock OpenCV from another thread: releasing a
        capture during ``read`` can crash. Streams are opened with a read
        timeout instead, and the capture loop abandons a blocked reader."""


class ImageListSource:
    """A list of image files (one image, or a folder in name order), one
    frame each. Unreadable files are skipped at once (they take no time slot)
    and counted (``unreadable``); ``delivered`` lists the file of each frame
    handed out, in order, so the n-th frame can be named."""

    is_live = False

    def __init__(self, paths: list[Path], name: str, fps: float, first: np.ndarray, first_pos: int,
                 unreadable: int = 0) -> None:
        self.paths = paths
        self.name = name
        self.fps: float | None = fps
        self.ended = False
        self.unreadable = unreadable
        self._pending: np.ndarray | None = first
        self._next = first_pos + 1
        self.delivered: list[Path] = [paths[first_pos]]

    def read(self) -> np.ndarray | None:
        """Next readable image; None once all were shown."""
        if self._pending is not None:
            img, self._pending = self._pending, None
            return img
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                img = decode_image_file(path)
            except SourceError as exc:
                # Skipped here, not by returning None: a failed read keeps its
                # slot in the capture loop's pacing (4 s of silence per bad file).
                self.unreadable += 1
                log.warning("skipping %s", exc)
                continue
            self.delivered.append(path)
            return img
        self.ended = True
        return None

    def close(self) -> None:
        """Nothing to release."""
        self.ended = True

    def interrupt(self) -> None:
        """Reads are short file reads; nothing to interrupt."""


def natural_key(path: Path) -> list[object]:
    """Sort key so ``img2.png`` comes before ``img10.png`` (name order as people read it)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by extension, hidden files skipped), in natural name order."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=natural_key)


def _open_images(spec: SourceSpec, cfg: CameraConfig) -> ImageListSource:
    p = Path(str(spec.value)).expanduser()
    if spec.kind == "image":
        img = decode_image_file(p)  # raises SourceError with the reason
        return ImageListSource([p], f"image {p.name}", cfg.images_fps, img, 0)
    if not p.exists():
        raise SourceError(f"image folder not found: {p} (check the path)")
    if not p.is_dir():
        raise SourceError(f"{p} is not a folder (use --image FILE for one image, --images DIR for a folder)")
    try:
        paths = list_images(p)
    except OSError as exc:
        raise SourceError(f"cannot list image folder {p}: {exc.strerror or exc} (check its permissions)") from None
    if not paths:
        raise SourceError(f"image folder {p} has no images "
                          f"(looked for {', '.join(e for e in IMAGE_EXTENSIONS[:5])}, ... files)")
    unreadable = 0
    for i, path in enumerate(paths):
        try:
            img = decode_image_file(path)
        except SourceError as exc:
            unreadable += 1
            log.warning("skipping %s", exc)
            continue
        return ImageListSource(paths, f"images {p.name}", cfg.images_fps, img, i, unreadable)
    raise SourceError(f"image folder {p}: none of its {len(paths)} images can be decoded (corrupt files?)")


def _camera_target(value: str | int | Path | None, cfg: CameraConfig) -> tuple[int | str, str]:
    """(index or device path, display name) for a camera spec value."""
    if value is None or value == "":
        return cfg.index, f"camera {cfg.index}"
    if isinstance(value, int):
        return value, f"camera {value}"
    text = str(value).strip()
    if text.isdigit():
        return int(text), f"camera {int(text)}"
    return text, f"camera {text}"


def _camera_api(cfg: CameraConfig) -> int:
    if cfg.backend == "v4l2" or (cfg.backend == "auto" and sys.platform.startswith("linux")):
        return cv2.CAP_V4L2
    return cv2.CAP_ANY


def _read_first(cap: cv2.VideoCapture, deadline: float) -> np.ndarray | None:
    """First decodable frame; cameras often fail a few reads while starting."""
    while True:
        ok, frame = cap.read()
        if ok and frame is not None and frame.size:
            return frame
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _open_camera(spec: SourceSpec, cfg: CameraConfig, cancel: threading.Event | None) -> CvCaptureSource:
    target, name = _camera_target(spec.value, cfg)
    api = _camera_api(cfg)
    if api == cv2.CAP_V4L2:
        dev = Path(f"/dev/video{target}") if isinstance(target, int) else Path(target)
        if not dev.exists():
            raise SourceError(f"{name}: {dev} does not exist (is the camera plugged in? "
                              "list cameras with `ls /dev/video*` and pick one with --camera N)")
    elif isinstance(target, str) and not Path(target).exists():
        raise SourceError(f"{name}: device {target} does not exist (check the path, or use --camera N)")
    open_budget = cfg.open_timeout_s

    def open_it() -> CvCaptureSource:
        deadline = time.monotonic() + open_budget * 0.9
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{name} cannot be opened (in use by another program, no permission "
                              "(add your user to the 'video' group), or not a capture device)")
        if cfg.width_px:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width_px)
        if cfg.height_px:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height_px)
        first = _read_first(cap, deadline)
        if first is None:
            cap.release()
            raise SourceError(f"{name} opened but delivers no frames (check the camera works in another app)")
        return CvCaptureSource(cap, name, is_live=True, first=first)

    return call_with_timeout(open_it, open_budget, name, cleanup=lambda s: s.close(), cancel=cancel)


def _open_url(url: str, cfg: CameraConfig, cancel: threading.Event | None) -> CvCaptureSource:
    name = f"stream {redact_url(url)}"
    open_ms = int(cfg.open_timeout_s * 1000)
    # FFmpeg's own timeouts keep the helper thread from lingering, and a read
    # timeout makes a dead stream's read() fail instead of blocking forever.
    read_ms = int(max(0.5, cfg.stall_timeout_s) * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]

    def open_it() -> CvCaptureSource:
        deadline = time.monotonic() + cfg.open_timeout_s * 0.9
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(_url_failure(url, name, "cannot be opened (check the address, that the camera or "
                                           "server is running, and the network)", deadline))
        first = _read_first(cap, deadline)
        if first is None:
            cap.release()
            raise SourceError(_url_failure(url, name, "opened but sent no decodable frame (check the stream format)",
                                           deadline))
        return CvCaptureSource(cap, name, is_live=True, first=first)

    return call_with_timeout(open_it, cfg.open_timeout_s, name, cleanup=lambda s: s.close(), cancel=cancel)


def _url_failure(url: str, name: str, fallback: str, deadline: float) -> str:
    """The one-line reason a URL gave no stream: refused, HTTP status, a web page (issue 13), else ``fallback``."""
    from assist.capture.http_probe import explain_url_failure

    reason = explain_url_failure(url, timeout_s=max(0.5, min(3.0, deadline - time.monotonic())))
    return f"{name} cannot be opened: {reason}" if reason else f"{name} {fallback}"


def _open_video_file(path: Path, cfg: CameraConfig, cancel: threading.Event | None,
                     name: str | None = None) -> CvCaptureSource:
    name = name or f"video {path.name}"
    if not path.exists():
        raise SourceError(f"video not found: {path} (check the path)")
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a video (use --images DIR for a folder of images)")
    if path.stat().st_size == 0:
        raise SourceError(f"video {path} is an empty file (0 bytes)")

    def open_it() -> CvCaptureSource:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(str(path))  # another backend may know the format
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video {path}: corrupt, truncated or an unsupported format "
                              "(try converting it to MP4/H.264)")
        ok, first = cap.read()
        if not ok or first is None or not first.size:
            cap.release()
            raise SourceError(f"video {path} has no decodable frames (corrupt or truncated file)")
        return CvCaptureSource(cap, name, is_live=False, first=first)

    return call_with_timeout(open_it, cfg.open_timeout_s, name, cleanup=lambda s: s.close(), cancel=cancel)


def open_source(spec: SourceSpec, cfg: CameraConfig, *, cancel: threading.Event | None = None) -> FrameSource:
    """Open a source, or raise :class:`SourceError` with a one-line reason.

    Never takes much longer than ``cfg.open_timeout_s`` (the demo clip is
    built first, the first time, which takes a few seconds). ``cancel`` aborts
    a pending open early (shutdown during a reconnect).
    """
    quiet_opencv_logs()
    kind = spec.kind
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown source kind {kind!r} (one of {', '.join(SOURCE_KINDS)})")
    if kind == "camera":
        return _open_camera(spec, cfg, cancel)
    if kind in ("image", "images"):
        if spec.value is None:
            raise SourceError(f"--{kind} needs a path")
        return _open_images(spec, cfg)
    if kind == "demo":
        from assist.capture.demo import make_demo_clip

        try:
            path = make_demo_clip(Path(str(spec.value)) if spec.value else None)
        except OSError as exc:
            raise SourceError(f"cannot write the demo clip: {exc} (check free disk space)") from None
        return _open_video_file(path, cfg, cancel, name="demo clip")
    if spec.value is None or str(spec.value) == "":
        raise SourceError(f"--{'video' if kind == 'url' else kind} needs a path or URL")
    if kind == "url" or is_url(spec.value):
        url = str(spec.value)
        if not is_url(url):
            raise SourceError(f"not a stream URL: {url} (use rtsp://, http://, https:// ...)")
        return _open_url(url, cfg, cancel)
    return _open_video_file(Path(str(spec.value)).expanduser(), cfg, cancel)
