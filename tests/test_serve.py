"""Models served by a real Triton Inference Server on loopback (issue 18).

The server is the real one ``make serve`` starts (PyTriton's tritonserver in
``.venv-serve``, made here if missing); the agent is the real command line.
Only 127.0.0.1; every server is stopped by its pid, bounded in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers_caption import build_tiny_vit_gpt2, make_picture, teach_caption
from helpers_cli import ROOT, assert_clean_error, read_log, run_cli
from helpers_clips import read_video, write_video
from helpers_serve import ServerProcess, free_port_triple

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_venv() -> Path:
    """The server environment (.venv-serve): made from PyPI when missing (make test makes it first)."""
    from assist.serve.launch import ensure_serve_venv

    return ensure_serve_venv()


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return make_picture(1)


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory, picture: np.ndarray) -> Path:
    """A tiny ViT-GPT2 built here (the real transformers classes), taught a caption for ``picture``."""
    import torch

    torch.set_num_threads(1)
    d = build_tiny_vit_gpt2(tmp_path_factory.mktemp("served") / "tiny-vit-gpt2")
    teach_caption(d, picture, "a red bus parked next to a tree")
    return d


@pytest.fixture(scope="module")
def server(serve_venv: Path, detector_path: Path, tiny_captioner: Path):  # noqa: ANN201 - generator fixture
    """One server with the real detector and a tiny captioner for the module."""
    srv = ServerProcess(free_port_triple(), detector=str(detector_path), captioner=str(tiny_captioner))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def hazards(log: list[dict]) -> list[tuple]:
    """The announcement decisions of a run: what a listener hears about objects."""
    return [(e["frame"], e["label"], e["direction"], e["proximity"], e["text"]) for e in log if e["type"] == "hazard"]


FRAMES = 430  # the whole sidewalk clip (17 s): a car approaching, a person ahead (far vehicles off the path are not news)


def _every_frame(clip: Path, ref: str, log_path: Path, *extra: str) -> list[dict]:
    proc = run_cli("--video", str(clip), "--every-frame", "--headless", "--speech", "none", "--log", str(log_path),
                   *extra, env={"ASSIST_DETECTOR": ref})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return read_log(log_path)


@pytest.fixture(scope="module")
def local_hazards(detector_path: Path, videos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """The warnings of the local detector on the clip's first FRAMES frames."""
    log = _every_frame(videos_dir / "sidewalk_firstperson.mp4", str(detector_path),
                       tmp_path_factory.mktemp("local") / "local.jsonl", "--max-frames", str(FRAMES))
    found = hazards(log)
    assert found, "the clip has hazards: the comparison must not be empty"
    return found


def test_served_detector_gives_the_local_warnings(server: ServerProcess, local_hazards: list[tuple],
                                                  videos_dir: Path, tmp_path: Path) -> None:
    log = _every_frame(videos_dir / "sidewalk_firstperson.mp4", f"grpc://127.0.0.1:{server.port + 1}/detector",
                       tmp_path / "served.jsonl", "--max-frames", str(FRAMES))
    started = [e for e in log if e.get("event") == "started"]
    assert started and started[0]["detector"].startswith("grpc://")
    assert hazards(log) == local_hazards


def test_every_frame_run_waits_for_a_lost_server_and_skips_no_frame(serve_venv: Path, detector_path: Path,
                                                                    local_hazards: list[tuple], videos_dir: Path,
                                                                    tmp_path: Path) -> None:
    port = free_port_triple()
    srv = ServerProcess(port, detector=str(detector_path))
    agent = None
    log_path = tmp_path / "run.jsonl"
    try:
        srv.wait_ready()
        env = dict(os.environ, ASSIST_DETECTOR=f"http://127.0.0.1:{port}/detector", HF_HUB_OFFLINE="1")
        agent = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video",
                                  str(videos_dir / "sidewalk_firstperson.mp4"), "--every-frame", "--headless",
                                  "--speech", "none", "--log", str(log_path)],
                                 cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        _wait_log(log_path, lambda log: any(e["type"] == "hazard" for e in log), 120)
        srv.kill()
        _wait_log(log_path, lambda log: any(e.get("event") == "worker_fault" for e in log), 30)
        assert srv.wait_ports_closed(), "tritonserver did not exit after its parent was killed"
        srv = ServerProcess(port, detector=str(detector_path))
        srv.wait_ready()
        out, err = agent.communicate(timeout=180)
    finally:
        _end(agent, srv)
    assert agent.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    log = read_log(log_path)
    texts = [e.get("text") for e in log if e["type"] == "status"]
    assert texts.index("Hazard detection back") > texts.index("Hazard detection unavailable")
    changes = [e["event"] for e in log if e["type"] == "status" and e.get("worker") == "hazards"]
    assert changes == ["worker_fault", "worker_recovered"], changes  # one event per change, with its words
    # Deterministic despite the outage: the frames were waited for, not skipped.
    assert [h for h in hazards(log) if h[0] < FRAMES] == local_hazards
    assert log[-1]["event"] == "stopped" and log[-1]["exit_code"] == 0


def test_server_answers_http_and_reports_metadata(server: ServerProcess) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/v2/models/detector/config", timeout=5) as r:
        config = json.load(r)
    import ast

    meta = ast.literal_eval(config["parameters"]["metadata"]["string_value"])
    assert meta["names"][0] == "person" and len(meta["names"]) == 80
    assert config["max_batch_size"] >= 1 and "dynamic_batching" in config
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port + 2}/metrics", timeout=5) as r:
        assert b"nv_inference_request_success" in r.read()


@pytest.mark.parametrize("ref, fragments", [
    ("grpc://127.0.0.1:{free}/detector", ("grpc://127.0.0.1:", "connection refused")),
    ("http://127.0.0.1:{http}/nosuch", ("/nosuch", "the Triton server answered", "nosuch")),
    ("http://127.0.0.1:{grpc}/detector", ("not in HTTP", "gRPC port")),
])
def test_unusable_server_exits_4_naming_the_url(server: ServerProcess, videos_dir: Path, ref: str,
                                                fragments: tuple[str, ...]) -> None:
    url = ref.format(free=free_port_triple(), http=server.port, grpc=server.port + 1)
    proc = run_cli("--video", str(videos_dir / "street_night.mp4"), "--headless", "--speech", "none",
                   env={"ASSIST_DETECTOR": url}, timeout=120)
    assert_clean_error(proc, 4, *fragments)


def test_served_captioner_says_what_the_local_one_says(server: ServerProcess, tiny_captioner: Path,
                                                       picture: np.ndarray) -> None:
    from assist.config import CaptionConfig
    from assist.describe.captioner import Captioner
    from assist.describe.remote import RemoteCaptioner

    local = Captioner(str(tiny_captioner), CaptionConfig(model=str(tiny_captioner), device="cpu")).caption(picture)
    assert local.strip()
    for url in (f"grpc://127.0.0.1:{server.port + 1}/captioner", f"http://127.0.0.1:{server.port}/captioner"):
        remote = RemoteCaptioner(url, CaptionConfig(model=url))
        assert remote.caption(picture) == local
        assert remote.caption_batch([picture, picture[:, ::-1].copy()])[0] == local


def test_image_command_with_both_models_served(server: ServerProcess, picture: np.ndarray, tmp_path: Path) -> None:
    import cv2

    image = tmp_path / "picture.png"
    cv2.imwrite(str(image), picture)
    proc = run_cli("--image", str(image), env={"ASSIST_DETECTOR": f"grpc://127.0.0.1:{server.port + 1}/detector",
                                               "ASSIST_CAPTIONER": f"http://127.0.0.1:{server.port}/captioner"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Caption:" in proc.stdout and "bus" in proc.stdout.lower(), proc.stdout


def test_unreachable_served_captioner_exits_4(server: ServerProcess, videos_dir: Path) -> None:
    url = f"grpc://127.0.0.1:{free_port_triple() + 1}/captioner"
    proc = run_cli("--video", str(videos_dir / "street_night.mp4"), "--headless", "--speech", "none",
                   env={"ASSIST_DETECTOR": f"grpc://127.0.0.1:{server.port + 1}/detector", "ASSIST_CAPTIONER": url},
                   timeout=120)
    assert_clean_error(proc, 4, url, "connection refused")


def _long_clip(videos_dir: Path, out: Path, seconds: float) -> Path:
    """The real sidewalk footage, smaller and looped to ``seconds`` (a server restart takes a while)."""
    import cv2

    frames, fps = read_video(videos_dir / "sidewalk_firstperson.mp4")
    small = [cv2.resize(f, (384, 288), interpolation=cv2.INTER_AREA) for f in frames[::2]]
    fps = fps / 2
    n = int(seconds * fps)
    return write_video((small[i % len(small)] for i in range(n)), out, fps=fps)


def _end(agent: subprocess.Popen[str] | None, srv: ServerProcess) -> None:
    """Whatever happened: the agent killed if it is still running, the server stopped."""
    if agent is not None and agent.poll() is None:
        agent.kill()
        agent.communicate(timeout=10)
    srv.stop()


def _wait_log(path: Path, pred, timeout: float) -> list[dict]:  # noqa: ANN001 - a predicate on the log
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = read_log(path) if path.exists() else []
        if pred(log):
            return log
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting on the event log:\n{path.read_text()[-3000:] if path.exists() else ''}")


def test_server_lost_mid_run_then_back(serve_venv: Path, detector_path: Path, videos_dir: Path,
                                       tmp_path: Path) -> None:
    clip = _long_clip(videos_dir, tmp_path / "walk.mp4", 150)
    config = tmp_path / "fast.toml"
    config.write_text("[hazards]\nconfirm_frames = 1\nclass_cooldown_s = 0.0\ntold_memory_s = 0.0\ndeadline_s = 2.0\n"
                      "[caption]\nenabled = false\n")
    port = free_port_triple()
    srv = ServerProcess(port, detector=str(detector_path))
    agent = None
    try:
        srv.wait_ready()
        log_path = tmp_path / "run.jsonl"
        env = dict(os.environ, ASSIST_DETECTOR=f"grpc://127.0.0.1:{port + 1}/detector", HF_HUB_OFFLINE="1",
                   PYTHONUNBUFFERED="1")
        agent = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--headless",
                                  "--speech", "none", "--config", str(config), "--log", str(log_path)],
                                 cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        _wait_log(log_path, lambda log: any(e["type"] == "hazard" for e in log), 120)
        srv.kill()  # the server dies mid-run
        _wait_log(log_path, lambda log: any(e.get("event") == "worker_fault" for e in log), 30)
        assert srv.wait_ports_closed(), "tritonserver did not exit after its parent was killed"
        srv = ServerProcess(port, detector=str(detector_path))
        srv.wait_ready()
        # One status event per change: worker_recovered carries the spoken "Hazard detection back".
        log = _wait_log(log_path, lambda log: any(e.get("event") == "worker_recovered" for e in log), 90)
        back_at = next(e["t"] for e in log if e.get("event") == "worker_recovered")
        _wait_log(log_path, lambda log: any(e["type"] == "hazard" and e["t"] > back_at for e in log), 60)
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        _end(agent, srv)
    assert agent.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    log = read_log(log_path)
    texts = [e.get("text") for e in log if e["type"] == "status"]
    assert "Hazard detection unavailable" in texts and "Hazard detection back" in texts
    # One outage, one notice each way (no flapping while the server restarts), each ONE status
    # event carrying the details and the spoken words.
    assert texts.count("Hazard detection back") == 1
    back = [e for e in log if e["type"] == "status" and e.get("text") == "Hazard detection back"]
    assert back[0]["event"] == "worker_recovered" and back[0]["worker"] == "hazards", back
    faults = [e for e in log if e["type"] == "status" and e.get("text") == "Hazard detection unavailable"]
    assert all(e["event"] == "worker_fault" and e["worker"] == "hazards" and e["kind"] for e in faults), faults
    lost = texts.index("Hazard detection unavailable")
    assert texts.index("Hazard detection back") > lost
    assert log[-1]["type"] == "status" and log[-1]["event"] == "stopped" and log[-1]["exit_code"] == 0


def test_server_stops_on_sigterm_within_seconds(server: ServerProcess) -> None:
    # Last in the module: it stops the shared server.
    elapsed = server.stop(timeout=20)
    assert server.proc.returncode == 0, server.output[-2000:]
    assert elapsed < 10, f"took {elapsed:.1f} s to stop"
    assert "stopped" in server.output
