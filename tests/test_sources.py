"""Opening sources: every bad input is a one-line SourceError within the open
timeout; good inputs open with the right properties. Plus the demo clip."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from assist.capture.errors import SourceError
from assist.capture.loop import CaptureLoop
from assist.capture.sources import SourceSpec, call_with_timeout, is_url, open_source, redact_url
from assist.config import CameraConfig
from assist.core.events import EventLog
from helpers_capture import SilentServer, closed_port, coded_frame, read_code, write_coded_video


def cfg(**kw: float) -> CameraConfig:
    c = CameraConfig(open_timeout_s=3.0)
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def open_error(spec: SourceSpec, config: CameraConfig | None = None, within_s: float = 5.0) -> str:
    """Open ``spec``, expecting a one-line SourceError within ``within_s``."""
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source(spec, config or cfg())
    assert time.monotonic() - t0 < within_s
    msg = str(info.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------- bad inputs
def test_missing_video_file(tmp_path: Path):
    msg = open_error(SourceSpec("video", str(tmp_path / "nope.mp4")))
    assert "not found" in msg and "nope.mp4" in msg


def test_folder_given_as_video(tmp_path: Path):
    assert "--images" in open_error(SourceSpec("video", str(tmp_path)))


def test_missing_image_folder(tmp_path: Path):
    msg = open_error(SourceSpec("images", str(tmp_path / "nowhere")))
    assert "not found" in msg and "nowhere" in msg


def test_empty_image_folder(tmp_path: Path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    msg = open_error(SourceSpec("images", str(tmp_path)))
    assert "has no images" in msg and str(tmp_path) in msg


def test_folder_of_only_corrupt_images(tmp_path: Path):
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert "none of its 3 images" in open_error(SourceSpec("images", str(tmp_path)))


def test_file_given_as_image_folder(tmp_path: Path):
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), coded_frame(1))
    assert "--image FILE" in open_error(SourceSpec("images", str(p)))


@pytest.mark.parametrize("value", [63, "63", "/dev/video63", "/dev/does-not-exist"])
def test_camera_that_does_not_exist(value):
    msg = open_error(SourceSpec("camera", value), within_s=3.0)
    assert "camera" in msg and ("does not exist" in msg or "cannot be opened" in msg)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="V4L2 device nodes are Linux")
def test_camera_path_that_is_not_a_capture_device(tmp_path: Path):
    fake = tmp_path / "video0"
    fake.write_bytes(b"")
    msg = open_error(SourceSpec("camera", str(fake)), within_s=4.0)
    assert "cannot be opened" in msg and str(fake) in msg


def test_unreachable_url_refused():
    url = f"http://127.0.0.1:{closed_port()}/stream.mjpg"
    msg = open_error(SourceSpec("video", url), within_s=3.0)
    assert "cannot be opened" in msg and "127.0.0.1" in msg


def test_url_that_never_answers_times_out():
    server = SilentServer()  # accepts the connection, never sends a byte
    try:
        t0 = time.monotonic()
        msg = open_error(SourceSpec("url", f"http://127.0.0.1:{server.port}/"), cfg(open_timeout_s=1.0),
                         within_s=3.0)
        assert time.monotonic() - t0 >= 0.9
        assert "127.0.0.1" in msg
    finally:
        server.close()


def test_not_a_url():
    assert "not a stream URL" in open_error(SourceSpec("url", "/some/file.mp4"))


def test_url_password_is_not_shown():
    assert redact_url("rtsp://admin:secret@10.0.0.2/live") == "rtsp://admin:***@10.0.0.2/live"
    assert is_url("RTSP://cam/x") and is_url("http://a") and not is_url("C:/videos/a.mp4")
    assert not is_url("file.mp4") and not is_url(3)


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 50, b"\x00" * 4096])
def test_corrupt_video_files(tmp_path: Path, content: bytes):
    p = tmp_path / "broken.mp4"
    p.write_bytes(content)
    msg = open_error(SourceSpec("video", str(p)))
    assert "broken.mp4" in msg and ("empty" in msg or "corrupt" in msg)


def test_truncated_mp4_cannot_be_opened(tmp_path: Path):
    full = write_coded_video(tmp_path / "full.mp4", 30, 10.0, "mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # the index (moov) is at the end
    assert "cut.mp4" in open_error(SourceSpec("video", str(cut)))


def test_truncated_avi_plays_what_is_there_then_ends_cleanly(tmp_path: Path):
    full = write_coded_video(tmp_path / "full.avi", 30, 10.0, "MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    c = cfg()
    loop = CaptureLoop(lambda: open_source(SourceSpec("video", str(cut)), c), c, EventLog(), every_frame=True)
    codes = [read_code(f.image) for f in loop.iter_frames()]
    assert 5 <= len(codes) < 30 and codes == list(range(len(codes)))
    assert loop.ended and loop.error is None


def test_unknown_kind_and_missing_values():
    assert "unknown source kind" in open_error(SourceSpec("webcam", 0))
    assert "needs a path" in open_error(SourceSpec("images", None))
    assert "needs a path" in open_error(SourceSpec("video", ""))


def test_call_with_timeout_abandons_a_blocked_open_and_cleans_up_later():
    release = threading.Event()
    cleaned: list[str] = []

    def slow_open() -> str:
        release.wait(5.0)
        return "device"

    t0 = time.monotonic()
    with pytest.raises(SourceError, match="no answer within 0.3 s"):
        call_with_timeout(slow_open, 0.3, "camera 9", cleanup=cleaned.append)
    assert time.monotonic() - t0 < 1.0
    release.set()
    deadline = time.monotonic() + 2.0
    while not cleaned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cleaned == ["device"]  # the late result was released, not leaked


def test_call_with_timeout_passes_errors_and_values_through():
    assert call_with_timeout(lambda: 42, 1.0, "x") == 42
    with pytest.raises(SourceError, match="boom"):
        call_with_timeout(lambda: (_ for _ in ()).throw(SourceError("boom")), 1.0, "x")


# ------------------------------------------------------------- good inputs
def test_video_file_properties(tmp_path: Path):
    p = write_coded_video(tmp_path / "v.avi", 12, 12.5, "MJPG")
    src = open_source(SourceSpec("video", str(p)), cfg())
    try:
        assert src.fps == pytest.approx(12.5) and src.is_live is False and "v.avi" in src.name
        first = src.read()
        assert read_code(first) == 0
    finally:
        src.close()
    src.close()  # idempotent


def test_single_image_yields_one_frame_then_ends(tmp_path: Path):
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), (coded_frame(5).astype(np.uint16) * 257))  # a 16-bit file
    c = cfg()
    loop = CaptureLoop(lambda: open_source(SourceSpec("image", str(p)), c), c, EventLog(), every_frame=True)
    frames = list(loop.iter_frames())
    assert len(frames) == 1 and read_code(frames[0].image) == 5 and frames[0].image.dtype == np.uint8
    assert loop.ended


def test_missing_single_image(tmp_path: Path):
    assert "not found" in open_error(SourceSpec("image", str(tmp_path / "x.png")))


# ------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from assist.capture.demo import make_demo_clip

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSIST_CACHE", str(cache))
        path = make_demo_clip()
    assert path.parent == cache
    return path


def _frames_at(path: Path, seconds: list[float], fps: float = 10.0) -> dict[float, np.ndarray]:
    wanted = {round(s * fps): s for s in seconds}
    out: dict[float, np.ndarray] = {}
    cap = cv2.VideoCapture(str(path))
    i = 0
    while len(out) < len(wanted):
        ok, img = cap.read()
        assert ok, f"clip ended at frame {i}"
        if i in wanted:
            out[wanted[i]] = img
        i += 1
    cap.release()
    return out


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.slow
def test_demo_clip_is_a_readable_30_second_clip(demo_clip: Path):
    cap = cv2.VideoCapture(str(demo_clip))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert n == 300  # 30 s
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    cap.release()
    f = _frames_at(demo_clip, [0.0, 4.5, 7.0, 9.5, 14.5, 17.0, 20.0, 25.5, 29.0])
    assert _diff(f[0.0], f[4.5]) < 4  # still, with a little noise
    assert _diff(f[4.5], f[7.0]) > 15  # walking: the view changes a lot
    assert _diff(f[9.5], f[14.5]) < 4  # still, close to the bus
    assert _diff(f[14.5], f[20.0]) > 30  # a different scene after the turn
    assert _diff(f[17.0], f[25.5]) < 4  # the new scene is still
    assert _diff(f[29.0], f[14.5]) < 4  # back to the bus
    assert min(img.mean() for img in f.values()) > 40  # never a black frame


@pytest.mark.slow
def test_demo_clip_is_cached_and_rebuilt_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from assist.capture.demo import make_demo_clip

    monkeypatch.setenv("ASSIST_CACHE", str(tmp_path))
    first = make_demo_clip(fps=2.0)  # 60 frames: quick to build
    stamp, content = first.stat().st_mtime_ns, first.read_bytes()
    assert make_demo_clip(fps=2.0) == first and first.stat().st_mtime_ns == stamp  # reused
    first.unlink()
    again = make_demo_clip(fps=2.0)
    assert again.exists() and int(cv2.VideoCapture(str(again)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert again.read_bytes() == content  # seeded noise: the same clip every time
    first.write_bytes(b"garbage")  # a broken cache is rebuilt too
    assert int(cv2.VideoCapture(str(make_demo_clip(fps=2.0))).get(cv2.CAP_PROP_FRAME_COUNT)) == 60


@pytest.mark.slow
def test_demo_source_opens_the_cached_clip(demo_clip: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASSIST_CACHE", str(demo_clip.parent))
    stamp = demo_clip.stat().st_mtime_ns
    src = open_source(SourceSpec("demo"), cfg())
    try:
        assert src.name == "demo clip" and src.fps == pytest.approx(10.0) and not src.is_live
        assert src.read().shape == (480, 640, 3)
    finally:
        src.close()
    assert demo_clip.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_demo_bus_grows_then_the_scene_changes(demo_clip: Path, detector_path: Path):
    """The real detector sees a far bus ahead, the bus growing while we walk,
    then no bus in the second scene: what the golden end-to-end test relies on."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(1)
    model = YOLO(str(detector_path), task="detect")
    times = [2.0, 6.0, 7.0, 8.0, 8.5, 13.0, 20.0]
    f = _frames_at(demo_clip, times)

    def bus_height(img: np.ndarray) -> float:
        r = model.predict(img, imgsz=320, conf=0.3, verbose=False)[0]
        hs = [float(b[3] - b[1]) for b, c in zip(r.boxes.xyxyn.tolist(), r.boxes.cls.tolist(), strict=True)
              if r.names[int(c)] == "bus"]
        return max(hs, default=0.0)

    h = {t: bus_height(f[t]) for t in times}
    assert 0.15 < h[2.0] < 0.33, h  # far
    assert h[6.0] < h[7.0] < h[8.0] < h[8.5], h  # approaching: the box keeps growing
    assert h[8.5] > 0.6 and h[13.0] > 0.8, h  # very near
    assert h[20.0] == 0.0, h  # the other scene has no bus
