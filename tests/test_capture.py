"""The capture loop: reconnect, stall watchdog, spoken notices, drop counting,
shutdown within a second, file pacing and --every-frame on real video files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assist.capture.errors import SourceError
from assist.capture.loop import CaptureLoop
from assist.capture.sources import SourceSpec, open_source
from assist.core.events import EventLog, ListSink
from assist.core.frames import Frame, LatestFrameSlot
from helpers_capture import (
    FakeFactory,
    FakeSource,
    JumpClock,
    coded_frame,
    fast_config,
    read_code,
    release_hung,
    wait_until,
    write_coded_video,
)


@pytest.fixture(autouse=True)
def _free_hung_threads():
    yield
    release_hung()


def make_log() -> tuple[EventLog, ListSink]:
    events = EventLog()
    sink = ListSink()
    events.add_sink(sink)
    return events, sink


class Collector:
    """on_frame callback that keeps frames and their arrival times."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.lock = threading.Lock()

    def __call__(self, frame: Frame) -> None:
        with self.lock:
            self.frames.append(frame)

    def count(self) -> int:
        with self.lock:
            return len(self.frames)


def status_events(sink: ListSink) -> list[str]:
    return [e["event"] for e in sink.of_type("status")]


def assert_real_frames(frames: list[Frame]) -> None:
    """Every frame handed out is a real, normalised picture, in index order."""
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert f.image.flags["C_CONTIGUOUS"]
        assert f.image.mean() > 40, "a black placeholder frame was handed out"


# ------------------------------------------------------------- reconnecting
def test_reconnects_after_failures_and_announces_lost_then_back():
    first = FakeSource(["frame"] * 5, then="end", delay_s=0.01)  # a stream that closes
    second = FakeSource(delay_s=0.01, start_code=500)
    factory = FakeFactory([first, SourceError("refused"), SourceError("refused"), SourceError("refused"), second])
    events, sink = make_log()
    notices: list[str] = []
    loop = CaptureLoop(factory, fast_config(), events, notify=notices.append)
    got = Collector()
    loop.start(got)
    assert wait_until(lambda: any(read_code(f.image) >= 505 for f in list(got.frames)), 5.0)
    assert loop.stop(1.0)

    assert notices == ["camera_lost", "camera_back"]
    assert status_events(sink)[:2] == ["camera_lost", "camera_back"]
    assert len(factory.calls) == 5  # the first open + 3 failed tries + 1 good one
    assert loop.reconnects == 1 and loop.error is None and not loop.ended
    codes = [read_code(f.image) for f in got.frames]
    assert codes[:5] == [0, 1, 2, 3, 4] and codes[5] == 500, codes[:8]
    assert_real_frames(got.frames)
    assert first.closed and wait_until(lambda: second.closed, 1.0)  # closed by its reader thread
    assert first.close_thread in first.read_threads  # never from another thread during a read


def test_backoff_doubles_up_to_the_cap_without_sleeping_long():
    clock = JumpClock()
    cfg = fast_config(stall_timeout_s=2.0, reconnect_initial_s=0.5, reconnect_max_s=4.0)
    good = FakeSource(start_code=900)
    factory = FakeFactory([FakeSource(["frame"], then="end")] + [SourceError("down")] * 6 + [good], clock=clock.now)
    events, sink = make_log()
    loop = CaptureLoop(factory, cfg, events, clock=clock, sleep=clock.sleep)
    got = Collector()
    t0 = time.monotonic()
    loop.start(got)
    assert wait_until(lambda: any(read_code(f.image) == 900 for f in list(got.frames)), 5.0)
    assert loop.stop(1.0)
    assert time.monotonic() - t0 < 4.0  # ~20 s of backoff ran on the jumping clock

    gaps = np.diff(factory.calls[1:])  # between reconnect tries
    expected = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # 0.5 before the first try, then doubling, capped at 4
    assert len(gaps) == len(expected)
    assert np.allclose(gaps, expected, atol=0.15), gaps
    assert factory.calls[1] - factory.calls[0] == pytest.approx(0.5, abs=0.15)
    assert status_events(sink)[:2] == ["camera_lost", "camera_back"]


def test_gives_up_after_the_configured_number_of_tries():
    factory = FakeFactory([FakeSource(["frame", "frame"], then="end"), SourceError("down")])
    events, sink = make_log()
    notices: list[str] = []
    loop = CaptureLoop(factory, fast_config(reconnect_attempts=3), events, notify=notices.append)
    loop.start(Collector())
    assert loop.wait(5.0)
    assert isinstance(loop.error, SourceError) and "3 reconnect tries" in str(loop.error)
    assert len(factory.calls) == 1 + 3
    assert status_events(sink) == ["camera_lost", "camera_gave_up"]
    assert notices == ["camera_lost"]


# ------------------------------------------------------------------ stalls
def test_stalled_camera_is_detected_then_replaced():
    hung = FakeSource(["frame"] * 3, then="hang")  # a wedged driver: read never returns
    good = FakeSource(delay_s=0.01, start_code=100)
    factory = FakeFactory([hung, good])
    events, sink = make_log()
    notices: list[str] = []
    cfg = fast_config(stall_timeout_s=0.3)
    loop = CaptureLoop(factory, cfg, events, notify=notices.append)
    got = Collector()
    lost_at: list[float] = []
    events.add_sink(lambda e: lost_at.append(time.monotonic()) if e.get("event") == "camera_lost" else None)
    loop.start(got)
    assert wait_until(lambda: got.count() >= 3 and hung.blocked.is_set(), 2.0)
    t_block = time.monotonic()
    assert wait_until(lambda: any(read_code(f.image) >= 110 for f in list(got.frames)), 5.0)
    assert loop.stop(1.0)

    assert notices == ["camera_lost", "camera_back"]
    assert lost_at and 0.15 <= lost_at[0] - t_block <= 1.5, lost_at[0] - t_block
    assert not hung.closed  # its read never returned: nobody touched it from another thread
    assert_real_frames(got.frames)


def test_empty_frames_are_never_handed_out():
    broken = FakeSource(["frame", "frame"], then="empty")
    good = FakeSource(delay_s=0.01, start_code=300)
    factory = FakeFactory([broken, good])
    events, sink = make_log()
    notices: list[str] = []
    loop = CaptureLoop(factory, fast_config(stall_timeout_s=0.2), events, notify=notices.append)
    got = Collector()
    loop.start(got)
    assert wait_until(lambda: any(read_code(f.image) >= 305 for f in list(got.frames)), 5.0)
    assert loop.stop(1.0)
    codes = [read_code(f.image) for f in got.frames]
    assert codes[:3] == [0, 1, 300]
    assert loop.failed_reads > 0 and broken.reads > 3
    assert notices == ["camera_lost", "camera_back"]
    assert_real_frames(got.frames)


def test_short_glitch_is_not_announced():
    # A stream that closes and reopens at once never goes stall_timeout_s
    # without a frame: reconnect quietly, say nothing.
    factory = FakeFactory([FakeSource(["frame"] * 3, then="end", delay_s=0.01),
                           FakeSource(delay_s=0.01, start_code=50)])
    events, sink = make_log()
    notices: list[str] = []
    loop = CaptureLoop(factory, fast_config(stall_timeout_s=1.0, reconnect_initial_s=0.05), events,
                       notify=notices.append)
    got = Collector()
    loop.start(got)
    assert wait_until(lambda: any(read_code(f.image) >= 55 for f in list(got.frames)), 3.0)
    assert loop.stop(1.0)
    assert notices == [] and "camera_lost" not in status_events(sink)
    assert len(factory.calls) == 2


# --------------------------------------------------------------- shutdown
@pytest.mark.parametrize("mode", ["hang_read", "block_read", "hang_open", "long_backoff"])
def test_stop_returns_within_a_second(mode):
    if mode == "hang_read":
        factory = FakeFactory([FakeSource(["frame"], then="hang")])
        cfg = fast_config(stall_timeout_s=30.0)
    elif mode == "block_read":
        factory = FakeFactory([FakeSource(["frame"], then="block")])
        cfg = fast_config(stall_timeout_s=30.0)
    elif mode == "hang_open":  # the reconnect's open blocks for ever
        factory = FakeFactory([FakeSource(["frame"], then="end"), "hang"])
        cfg = fast_config(open_timeout_s=60.0)
    else:
        factory = FakeFactory([FakeSource(["frame"], then="end"), SourceError("down")])
        cfg = fast_config(reconnect_initial_s=30.0, reconnect_max_s=60.0)
    events, sink = make_log()
    loop = CaptureLoop(factory, cfg, events)
    got = Collector()
    loop.start(got)
    assert wait_until(lambda: got.count() >= 1, 2.0)
    time.sleep(0.2)  # let it get stuck
    t0 = time.monotonic()
    assert loop.stop(timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    assert loop.wait(0)


def test_watchdog_runs_on_real_time_even_with_a_virtual_clock():
    from assist.core.clock import VirtualClock

    first = FakeSource(["frame", "frame"], then="hang", fps=10.0)
    factory = FakeFactory([FakeSource(fps=10.0, start_code=70, delay_s=0.01)])
    events, sink = make_log()
    notices: list[str] = []
    loop = CaptureLoop(factory, fast_config(stall_timeout_s=0.2), events, notify=notices.append,
                       clock=VirtualClock(), every_frame=True, source=first)
    codes = []
    for f in loop.iter_frames():
        codes.append(read_code(f.image))
        if len(codes) == 5:
            break
    assert loop.stop(1.0)
    assert codes == [0, 1, 70, 71, 72] and notices == ["camera_lost", "camera_back"]
    assert len(factory.calls) == 1  # the given source was used first


def test_stop_of_iter_frames_from_another_thread():
    factory = FakeFactory([FakeSource(["frame"] * 2, then="hang", is_live=False, fps=10.0)])
    events, _ = make_log()
    loop = CaptureLoop(factory, fast_config(), events, every_frame=True)
    seen: list[int] = []
    th = threading.Thread(target=lambda: seen.extend(f.index for f in loop.iter_frames()), daemon=True)
    th.start()
    assert wait_until(lambda: len(seen) == 2, 2.0)
    t0 = time.monotonic()
    assert loop.stop(1.0)
    th.join(1.0)
    assert not th.is_alive() and time.monotonic() - t0 < 1.0
    assert seen == [0, 1]


def test_stop_after_leaving_iter_frames_early_releases_the_source():
    src = FakeSource(is_live=False, fps=10.0)
    loop = CaptureLoop(FakeFactory([src]), fast_config(), make_log()[0], every_frame=True)
    frames = loop.iter_frames()
    for f in frames:  # the consumer keeps a reference and stops at --max-frames
        if f.index == 4:
            break
    t0 = time.monotonic()
    assert loop.stop(1.0) and time.monotonic() - t0 < 0.5
    assert wait_until(lambda: src.closed, 1.0) and loop.wait(0)
    assert list(frames) == []

    unused = FakeSource(is_live=False, fps=10.0)
    loop2 = CaptureLoop(FakeFactory([unused]), fast_config(), make_log()[0], every_frame=True)
    loop2.open()
    loop2.iter_frames()  # never iterated
    assert loop2.stop(1.0) and unused.closed


# ------------------------------------------------- drops, skips and status
def test_status_events_report_fps_and_slot_drops():
    slot = LatestFrameSlot("hazard")  # nobody reads it: every frame but the last is a drop
    factory = FakeFactory([FakeSource(delay_s=0.005)])
    events, sink = make_log()
    loop = CaptureLoop(factory, fast_config(status_interval_s=0.2), events,
                       extra_stats=lambda: {"hazard_dropped": slot.dropped})
    loop.start(slot.put)
    assert wait_until(lambda: len(sink.of_type("status", event="capture")) >= 2, 3.0)
    assert loop.stop(1.0)
    stats = sink.of_type("status", event="capture")
    last = stats[-1]
    assert last["fps"] > 10  # a 200 fps fake, at least
    assert 0 < last["hazard_dropped"] <= last["frames"]
    assert slot.dropped == slot.put_count - 1 == loop.frames_read - 1


def test_corrupt_frames_in_a_file_are_skipped_and_counted():
    src = FakeSource(["frame", "empty", "frame", "fail", "fail", "frame"], then="end", is_live=False, fps=10.0)
    events, sink = make_log()
    loop = CaptureLoop(FakeFactory([src]), fast_config(), events, every_frame=True)
    frames = list(loop.iter_frames())
    assert [f.index for f in frames] == [0, 2, 5]  # skipped frames keep their slot in video time
    assert [f.t_capture for f in frames] == pytest.approx([0.0, 0.2, 0.5])
    assert [read_code(f.image) for f in frames] == [0, 1, 2]
    assert loop.frames_skipped == 3 and loop.frames_read == 3
    assert loop.ended and loop.error is None
    ends = sink.of_type("status", event="end_of_input")
    assert len(ends) == 1 and ends[0]["skipped"] == 3 and ends[0]["frames"] == 3
    assert "camera_lost" not in status_events(sink)


def test_a_file_that_only_fails_ends_with_an_error():
    src = FakeSource(["frame"], then="fail", is_live=False, fps=10.0)
    loop = CaptureLoop(FakeFactory([src]), fast_config(), make_log()[0], every_frame=True)
    frames = list(loop.iter_frames())
    assert len(frames) == 1 and not loop.ended
    assert isinstance(loop.error, SourceError) and "in a row" in str(loop.error)


def test_consumer_errors_do_not_stop_capture():
    factory = FakeFactory([FakeSource(["frame"] * 6, then="end", is_live=False, fps=1000.0)])
    events, _ = make_log()
    loop = CaptureLoop(factory, fast_config(), events)
    seen: list[int] = []

    def on_frame(f: Frame) -> None:
        seen.append(f.index)
        if f.index % 2:
            raise RuntimeError("consumer bug")

    loop.start(on_frame)
    assert loop.wait(3.0)
    assert seen == list(range(6)) and loop.callback_errors == 3 and loop.ended


def test_open_error_is_raised_by_open_and_recorded_by_start():
    factory = FakeFactory([SourceError("camera 7: /dev/video7 does not exist")])
    events, _ = make_log()
    loop = CaptureLoop(factory, fast_config(), events)
    with pytest.raises(SourceError, match="video7"):
        loop.open()
    loop2 = CaptureLoop(factory, fast_config(), events)
    loop2.start(Collector())
    assert loop2.wait(2.0) and isinstance(loop2.error, SourceError)


def test_large_frames_are_normalised_by_the_loop():
    class Big(FakeSource):
        def read(self):
            img = super().read()
            return None if img is None else np.repeat(np.repeat(img, 16, 0), 16, 1)  # 2560x1920

    factory = FakeFactory([Big(["frame"], then="end", is_live=False, fps=10.0)])
    events, _ = make_log()
    loop = CaptureLoop(factory, fast_config(max_side_px=640), events, every_frame=True)
    (frame,) = list(loop.iter_frames())
    assert frame.image.shape == (480, 640, 3)


# ------------------------------------------------------- real video files
@pytest.mark.parametrize("ext,fourcc", [("mp4", "mp4v"), ("avi", "MJPG")])
def test_every_frame_delivers_each_frame_once_in_order(tmp_path: Path, ext: str, fourcc: str):
    path = write_coded_video(tmp_path / f"clip.{ext}", 45, 15.0, fourcc)
    cfg = fast_config()
    events, sink = make_log()
    loop = CaptureLoop(lambda: open_source(SourceSpec("video", str(path)), cfg), cfg, events, every_frame=True)
    loop.open()
    assert loop.fps == pytest.approx(15.0) and loop.is_live is False
    frames = list(loop.iter_frames())
    assert [f.index for f in frames] == list(range(45))
    assert [read_code(f.image) for f in frames] == list(range(45))
    assert [f.t_capture for f in frames] == pytest.approx([i / 15.0 for i in range(45)])
    assert loop.ended and loop.frames_skipped == 0 and loop.error is None
    assert sink.of_type("status", event="end_of_input")[0]["frames"] == 45


@pytest.mark.parametrize("ext,fourcc", [("mp4", "mp4v"), ("avi", "MJPG")])
def test_file_plays_at_its_frame_rate(tmp_path: Path, ext: str, fourcc: str):
    n, fps = 24, 20.0
    path = write_coded_video(tmp_path / f"clip.{ext}", n, fps, fourcc)
    cfg = fast_config()
    events, _ = make_log()
    loop = CaptureLoop(lambda: open_source(SourceSpec("video", str(path)), cfg), cfg, events)
    got = Collector()
    t0 = time.monotonic()
    loop.start(got)
    assert loop.wait(10.0)
    elapsed = time.monotonic() - t0
    assert 0.8 * n / fps <= elapsed <= n / fps + 1.5, elapsed
    assert [read_code(f.image) for f in got.frames] == list(range(n))
    stamps = np.array([f.t_capture for f in got.frames])
    assert np.all(np.diff(stamps) > 0)
    assert stamps[-1] - stamps[0] == pytest.approx((n - 1) / fps, abs=0.4)
    assert loop.ended and loop.error is None


def test_slow_consumer_drops_frames_but_never_lags(tmp_path: Path):
    n, fps = 40, 20.0  # a 2 s clip
    path = write_coded_video(tmp_path / "clip.mp4", n, fps, "mp4v")
    cfg = fast_config()
    events, _ = make_log()
    slot = LatestFrameSlot("worker")
    processed: list[tuple[int, float]] = []

    def worker() -> None:  # takes 0.25 s per frame: 5x slower than the video
        while (f := slot.get(timeout=3.0)) is not None:
            time.sleep(0.25)
            processed.append((f.index, time.monotonic() - f.t_capture))

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    loop = CaptureLoop(lambda: open_source(SourceSpec("video", str(path)), cfg), cfg, events)
    loop.start(slot.put)
    assert loop.wait(6.0)
    slot.close()
    th.join(3.0)
    indices = [i for i, _ in processed]
    assert indices == sorted(indices) and len(indices) < n
    assert slot.dropped + len(indices) == n
    assert indices[-1] >= n - 6  # the worker ends near the end of the video, not behind it
    assert max(age for _, age in processed) < 0.8  # every processed frame was fresh


def test_image_folder_plays_in_name_order_and_skips_corrupt_files(tmp_path: Path):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, name in enumerate(["img1.png", "img2.jpg", "img10.png"]):
        cv2.imwrite(str(folder / name), coded_frame(i))
    (folder / "img3.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    cfg = fast_config(images_fps=2.0)
    events, sink = make_log()
    loop = CaptureLoop(lambda: open_source(SourceSpec("images", str(folder)), cfg), cfg, events, every_frame=True)
    frames = list(loop.iter_frames())
    # natural name order: img1, img2, img3 (corrupt: skipped at once, no time slot: issue 13), img10
    assert [read_code(f.image) for f in frames] == [0, 1, 2]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.t_capture for f in frames] == pytest.approx([0.0, 0.5, 1.0])
    assert loop.ended
    ends = sink.of_type("status", event="end_of_input")
    assert len(ends) == 1 and ends[0]["skipped"] == 1 and ends[0]["frames"] == 3
