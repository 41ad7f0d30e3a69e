"""The built-in demo clip, made at run time from the two photos that the
ultralytics wheel ships (``bus.jpg``, ``zidane.jpg``): no camera, no download.

Timeline (seconds of video time; frame = t * fps, 10 fps by default, 640x480,
300 frames, 30.0 s):

====================  ========================================================
 0.0 -  5.0 s         STILL: standing before the street scene, bus ahead, far
                      (the photo fills the middle 53 % of the frame height on a
                      blurred copy of itself; bus box height ~0.25 of the frame,
                      centred). Expected: first caption (a bus on a street),
                      bus announced ahead.
 5.0 -  9.0 s         WALK BRISKLY TOWARDS THE BUS at constant speed (the view
                      zooms on the bus; box height grows hyperbolically, as it
                      does when you approach an object: 0.25 -> 1.0 of the
                      frame height, ~0.33 at 6.3 s, ~0.4 at 7 s, ~0.57 at 8 s,
                      ~0.73 at 8.5 s; time to contact falls from 5.3 s to
                      1.3 s, below 4 s from 6.0 s on; small walking bob).
                      Expected: "bus approaching", then "very near"; no
                      caption while moving.
 9.0 - 15.0 s         STILL, close to the bus (bus fills the frame, people in
                      front of it are very near).
15.0 - 16.5 s         TURN: fast horizontal pan (slide) to the right to a
                      different scene.
16.5 - 26.0 s         STILL on the second scene (two men in suits, indoors,
                      ``zidane.jpg``). Expected: scene change -> new caption
                      after the view settles (~17.3 s or later).
26.0 - 27.5 s         TURN BACK: pan to the left, back to the close bus view.
27.5 - 30.0 s         STILL, close bus view again (scene change back).
====================  ========================================================

Every frame carries slight seeded camera noise (same clip on every run) so
the view is not unnaturally static. The clip is cached (rebuilt if missing or
unreadable); :data:`DEMO_SEGMENTS` lists the timeline for tests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

DEMO_WIDTH_PX = 640
DEMO_HEIGHT_PX = 480
DEMO_DURATION_S = 30.0
_VERSION = 2  # bump when the clip changes, so stale caches are rebuilt
_SEED = 20240601

# (start_s, end_s, kind, scene, what): the timeline of the module docstring.
DEMO_SEGMENTS: tuple[tuple[float, float, str, str, str], ...] = (
    (0.0, 5.0, "still", "street", "standing before the street scene, bus ahead and far"),
    (5.0, 9.0, "walk", "street", "walking briskly towards the bus: the bus grows to fill the frame"),
    (9.0, 15.0, "still", "street", "close to the bus"),
    (15.0, 16.5, "pan", "street->indoor", "turn right to a different scene"),
    (16.5, 26.0, "still", "indoor", "two men in suits indoors"),
    (26.0, 27.5, "pan", "indoor->street", "turn back to the bus"),
    (27.5, 30.0, "still", "street", "close to the bus again"),
)

# Bus box in bus.jpg (x1, y1, x2, y2, pixels), as the shared YOLO11n finds it.
_BUS_BOX = (27.0, 227.0, 804.0, 739.0)
_BUS_H0 = 0.25  # bus box height / frame height, far
_BUS_H1 = 1.00  # ... at the end of the walk (close enough to touch)


def demo_cache_dir() -> Path:
    """Where the demo clip is cached: $ASSIST_CACHE, else $XDG_CACHE_HOME/assist
    or ~/.cache/assist, else a temp folder when those are not writable."""
    env = os.environ.get("ASSIST_CACHE")
    candidates = [Path(env)] if env else []
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append((Path(xdg) if xdg else Path.home() / ".cache") / "assist")
    candidates.append(Path(tempfile.gettempdir()) / f"assist-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
            if os.access(c, os.W_OK):
                return c
        except OSError:
            continue
    raise OSError("no writable cache folder for the demo clip (set ASSIST_CACHE)")


def assets_dir() -> Path:
    """ultralytics' ``ASSETS`` folder (``ultralytics.utils.ASSETS``), found
    without importing ultralytics, which pulls in torch and takes seconds."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).parent / "assets"
        if folder.is_dir():
            return folder
    from ultralytics.utils import ASSETS  # the layout changed: ask the package

    return Path(ASSETS)


def _load_assets() -> tuple[np.ndarray, np.ndarray]:
    imgs = []
    for name in ("bus.jpg", "zidane.jpg"):
        p = assets_dir() / name
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"demo needs {p}, shipped with ultralytics; reinstall ultralytics")
        imgs.append(img)
    return imgs[0], imgs[1]


def _smoothstep(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


class _Scenes:
    """Renders the two scenes at any point of the timeline."""

    def __init__(self, bus: np.ndarray, zidane: np.ndarray) -> None:
        w, h = DEMO_WIDTH_PX, DEMO_HEIGHT_PX
        self.bus = bus
        # Background of the far view: the photo itself, enlarged to cover the
        # frame, strongly blurred and dimmed (like a phone's portrait video
        # shown in landscape): no hard black bars, and too blurred to detect.
        bh, bw = bus.shape[:2]
        cover = max(w / bw, h / bh)
        big = cv2.resize(bus, (round(bw * cover), round(bh * cover)), interpolation=cv2.INTER_AREA)
        y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
        bg = cv2.GaussianBlur(big[y0:y0 + h, x0:x0 + w], (0, 0), 40)
        self.bg = (bg.astype(np.float32) * 0.5).astype(np.uint8)
        bus_h = _BUS_BOX[3] - _BUS_BOX[1]
        self.s0 = _BUS_H0 * h / bus_h
        self.s1 = _BUS_H1 * h / bus_h
        self.c0 = (bw / 2.0, bh / 2.0)
        self.c1 = ((_BUS_BOX[0] + _BUS_BOX[2]) / 2.0, (_BUS_BOX[1] + _BUS_BOX[3]) / 2.0)
        zh, zw = zidane.shape[:2]
        cw = min(zw, round(zh * w / h))  # centre crop to 4:3
        zx = (zw - cw) // 2
        self.indoor = cv2.resize(zidane[:, zx:zx + cw], (w, h), interpolation=cv2.INTER_AREA)
        self.far = self.street(0.0)
        self.close = self.street(1.0)

    def street(self, progress: float, bob: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """The street view at walk ``progress`` 0 (far) .. 1 (close)."""
        # Constant walking speed: distance falls linearly, apparent size grows
        # as 1/distance, so the scale is s0 * d0 / d.
        d = 1.0 - progress * (1.0 - self.s0 / self.s1)
        s = self.s0 / d
        u = (s - self.s0) / (self.s1 - self.s0)
        cx = self.c0[0] + (self.c1[0] - self.c0[0]) * u
        cy = self.c0[1] + (self.c1[1] - self.c0[1]) * u
        out = self.bg.copy()
        # Resize with INTER_AREA first (no aliasing when shrinking), then place
        # with a sub-pixel translation so the zoom does not jitter.
        bh, bw = self.bus.shape[:2]
        interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
        scaled = cv2.resize(self.bus, (max(1, round(bw * s)), max(1, round(bh * s))), interpolation=interp)
        sx, sy = scaled.shape[1] / bw, scaled.shape[0] / bh  # the scale after rounding to whole pixels
        tx = DEMO_WIDTH_PX / 2.0 - sx * cx + bob[0]
        ty = DEMO_HEIGHT_PX / 2.0 - sy * cy + bob[1]
        m = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]], dtype=np.float32)
        cv2.warpAffine(scaled, m, (DEMO_WIDTH_PX, DEMO_HEIGHT_PX), dst=out, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_TRANSPARENT)
        return out

    @staticmethod
    def pan(a: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
        """Slide from view ``a`` to view ``b`` (b enters from the right), u in 0..1."""
        strip = np.concatenate([a, b], axis=1)
        x = round(_smoothstep(u) * DEMO_WIDTH_PX)
        return strip[:, x:x + DEMO_WIDTH_PX]

    def at(self, t: float) -> np.ndarray:
        """The clean (noise-free) frame at video time ``t``."""
        if t < 5.0:
            return self.far
        if t < 9.0:
            p = (t - 5.0) / 4.0
            bob = (2.0 * np.sin(2 * np.pi * 0.9 * t), 3.0 * np.sin(2 * np.pi * 1.8 * t))
            return self.street(p, bob)
        if t < 15.0:
            return self.close
        if t < 16.5:
            return self.pan(self.close, self.indoor, (t - 15.0) / 1.5)
        if t < 26.0:
            return self.indoor
        if t < 27.5:
            return self.pan(self.close, self.indoor, 1.0 - (t - 26.0) / 1.5)
        return self.close


def _clip_ok(path: Path, frames: int) -> bool:
    """The cached clip exists and decodes with the expected frame count."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return False
        ok, _ = cap.read()
        return bool(ok) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    finally:
        cap.release()


def _write(path: Path, fps: float, frames: int) -> None:
    bus, zidane = _load_assets()
    scenes = _Scenes(bus, zidane)
    rng = np.random.default_rng(_SEED)
    fourcc = "mp4v" if path.suffix.lower() == ".mp4" else "MJPG"
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (DEMO_WIDTH_PX, DEMO_HEIGHT_PX))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {fourcc} video to {tmp}")
    # Sensor noise (luminance, sigma 2 levels) and a slight exposure flicker:
    # enough to look natural, far below any change threshold. A small bank of
    # noise fields picked at random per frame looks the same as fresh noise and
    # keeps building the clip fast.
    shape = (DEMO_HEIGHT_PX, DEMO_WIDTH_PX, 1)
    bank = [np.repeat(np.round(rng.normal(0.0, 2.0, shape)), 3, axis=2).astype(np.int16) for _ in range(8)]
    try:
        for i in range(frames):
            img = cv2.add(scenes.at(i / fps), bank[int(rng.integers(len(bank)))], dtype=cv2.CV_8U)
            flicker = float(round(rng.normal(0.0, 1.0)))
            writer.write(cv2.add(img, (flicker, flicker, flicker, 0.0)))
    finally:
        writer.release()
    os.replace(tmp, path)


def make_demo_clip(path: Path | None = None, *, fps: float = 10.0) -> Path:
    """Write the demo clip (see the module docstring for its timeline) and
    return its path.

    ``path`` None: a cached clip in :func:`demo_cache_dir`, built the first
    time (a few seconds) and whenever it is missing or unreadable. An explicit
    ``path`` is always (re)written; ``.mp4`` uses mp4v, any other suffix MJPG.
    Raises OSError when it cannot be written.
    """
    frames = int(round(DEMO_DURATION_S * fps))
    if path is None:
        path = demo_cache_dir() / f"demo-v{_VERSION}-{fps:g}fps.mp4"
        for cached in (path, path.with_suffix(".avi")):  # .avi: the fallback below
            if _clip_ok(cached, frames):
                return cached
        log.info("building the demo clip at %s", path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write(path, fps, frames)
    except OSError:
        if path.suffix.lower() != ".mp4":
            raise
        # Some OpenCV builds (no FFmpeg) cannot write MP4: fall back to MJPG AVI.
        path = path.with_suffix(".avi")
        _write(path, fps, frames)
    return path
