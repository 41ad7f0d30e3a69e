"""A real network camera: MJPEG over HTTP from a local server, read by OpenCV's
FFmpeg backend through the same open_source + CaptureLoop the CLI uses. The
server is stopped mid-stream and restarted: camera_lost, camera_back, and
frames keep coming."""

from __future__ import annotations

import threading
import time

import pytest

from assist.capture.loop import CaptureLoop
from assist.capture.sources import SourceSpec, open_source
from assist.core.events import EventLog, ListSink
from assist.core.frames import Frame
from helpers_capture import MjpegServer, fast_config, read_code, wait_until


@pytest.fixture
def server():
    srv = MjpegServer(fps=20.0, max_s=20.0)
    srv.start()
    yield srv
    srv.stop()


def test_stream_survives_server_restart(server: MjpegServer):
    cfg = fast_config(stall_timeout_s=0.6, reconnect_initial_s=0.1, reconnect_max_s=0.4, open_timeout_s=2.0)
    events = EventLog()
    sink = ListSink()
    events.add_sink(sink)
    notices: list[str] = []
    frames: list[tuple[Frame, float]] = []
    lock = threading.Lock()

    def on_frame(f: Frame) -> None:
        with lock:
            frames.append((f, time.monotonic()))

    def count() -> int:
        with lock:
            return len(frames)

    spec = SourceSpec("video", server.url)  # what --video http://... maps to
    loop = CaptureLoop(lambda: open_source(spec, cfg), cfg, events, notify=notices.append)
    loop.open()
    assert loop.is_live and "127.0.0.1" in (loop.name or "")
    loop.start(on_frame)
    try:
        assert wait_until(lambda: count() >= 10, 5.0), "no frames from the MJPEG server"
        server.stop()  # the camera goes away mid-stream
        t_down = time.monotonic()
        assert wait_until(lambda: "camera_lost" in notices, 4.0), "camera_lost never reported"
        lost_after = time.monotonic() - t_down
        n_before = count()
        time.sleep(0.3)  # down for a while: reconnect tries fail (connection refused)
        assert count() == n_before, "frames were handed out while the camera was down"

        server.start()  # back on the same port
        t_up = time.monotonic()
        assert wait_until(lambda: "camera_back" in notices, 5.0), "camera_back never reported"
        assert wait_until(lambda: count() >= n_before + 10, 5.0), "frames did not keep coming"
        back_after = time.monotonic() - t_up
    finally:
        assert loop.stop(1.0)

    assert notices == ["camera_lost", "camera_back"]
    statuses = [e["event"] for e in sink.of_type("status")]
    assert statuses.index("camera_lost") < statuses.index("camera_back")
    assert 0.3 <= lost_after <= 3.0, lost_after  # about stall_timeout_s after the last frame
    assert back_after < 4.0, back_after
    assert loop.error is None and not loop.ended and loop.reconnects == 1
    idx = [f.index for f, _ in frames]
    assert idx == sorted(set(idx))
    codes = [read_code(f.image) for f, _ in frames]
    # The server counts the frames it sends: after the restart the codes go on
    # from where they were, so both halves are real stream frames, in order.
    assert codes == sorted(codes) and codes[n_before] > codes[n_before - 1]
