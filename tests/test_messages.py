"""Clear messages (issue 13, item 6), each against the real thing: OpenCV's
FFmpeg backend and real HTTP servers on loopback, ultralytics' own error for a
missing runtime, the real training and evaluation commands, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assist.capture.errors import SourceError
from assist.capture.sources import SourceSpec, open_source
from assist.config import CameraConfig
from assist.hazards.runtimes import RUNTIMES
from helpers_capture import closed_port
from helpers_cli import ROOT, run_cli


class _Site(BaseHTTPRequestHandler):
    """A camera's web server: a viewer page at /, nothing at other paths."""

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/":
            body = b"<!doctype html><html><body><img src='/cam.mjpg'></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _open_error(url: str) -> str:
    with pytest.raises(SourceError) as info:
        open_source(SourceSpec("video", url), CameraConfig(open_timeout_s=5.0))
    return str(info.value)


def test_a_refused_connection_says_so() -> None:
    msg = _open_error(f"http://127.0.0.1:{closed_port()}/")
    assert "connection refused" in msg and "nothing listens" in msg, msg


def test_an_http_error_names_its_status(site: str) -> None:
    msg = _open_error(f"{site}/stream.mjpg")
    assert "HTTP 404" in msg and "path" in msg, msg


def test_a_web_page_is_not_a_video_stream(site: str) -> None:
    msg = _open_error(f"{site}/")
    assert "returns a web page, not a video stream" in msg, msg


def test_a_missing_detector_runtime_names_the_package_and_the_extra(tmp_path: Path, bus_jpg: Path) -> None:
    """The real ultralytics loader on a .tflite file without its runtime installed."""
    try:
        import ai_edge_litert  # noqa: F401
        pytest.skip("the TFLite runtime is installed here")
    except ImportError:
        pass
    fake = tmp_path / "detector.tflite"
    fake.write_bytes(b"not a real model, but the runtime is missing first")
    proc = run_cli("--image", str(bus_jpg), "--speech", "none", env={"ASSIST_DETECTOR": str(fake)}, timeout=120)
    assert proc.returncode == 4, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "TFLite runtime is not installed" in err and "pip install ai-edge-litert" in err and ".[tflite]" in err


def test_every_named_extra_exists_in_pyproject() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, rt in RUNTIMES.items():
        if rt.extra is not None:
            assert rt.extra in extras, (module, rt.extra)
            assert any(dep.lower().startswith(rt.package.lower()) for dep in extras[rt.extra]), (rt, extras[rt.extra])


@pytest.mark.slow
def test_training_from_an_unreachable_hub_fails_at_once(coco_dir: Path, tmp_path: Path) -> None:
    """A hub that refuses connections (HF_ENDPOINT on a closed port), offline mode not set: before the
    fix huggingface_hub retried five times (~30 s) and printed every failure twice."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "assist.train", "--captions",
                           str(coco_dir / "annotations" / "captions_val2017.json"), "--images",
                           str(coco_dir / "val2017"), "--model", "nlpconnect/vit-gpt2-image-captioning",
                           "--out", str(tmp_path / "out"), "--quiet"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert not any("Retry" in ln or "thrown while requesting" in ln for ln in lines), lines
    assert len(lines) == len(set(lines)), lines  # each line once
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and "cannot be reached" in errors[0] and "hf download" in errors[0], errors


def test_evaluating_a_missing_model_folder_says_the_folder_is_missing(
        coco_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from assist.training import evaluate as ev

    monkeypatch.chdir(ROOT)  # models/ exists here: models/my-captioner is a folder path, not a hub id
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = ev.main(["--captions", str(coco_dir / "annotations" / "captions_val2017.json"),
                    "--images", str(coco_dir / "val2017"), "--model", "models/my-captioner", "--quiet"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "model folder models/my-captioner does not exist" in err and "hf download" not in err, err


def test_a_warm_up_longer_than_the_run_is_scaled_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from assist.training.train import fit_warmup

    assert fit_warmup(100, 5000) == 100  # a sensible warm-up is kept
    with caplog.at_level("WARNING", logger="assist.training.train"):
        scaled = fit_warmup(500, 40)
    assert 1 <= scaled <= 40 // 2
    assert any("--warmup-steps 500" in r.getMessage() and "40 steps" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("validating", [True, False])
def test_the_validate_config_hint_is_left_out_when_validating(tmp_path: Path, validating: bool) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[speech]\nrat = 3\n", encoding="utf-8")
    args = ["--config", str(bad)] + (["--validate-config"] if validating else ["--image", str(tmp_path / "x.jpg")])
    proc = run_cli(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert "speech.rat" in proc.stderr
    assert ("run --validate-config" in first) is not validating, first
