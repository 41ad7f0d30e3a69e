"""Shared fixtures: where the real data and detector weights live.

The real data is never copied into the repository. Tests find it through
environment variables (set by .ci/run) or the ``../shared`` folder beside the
checkout, and skip with a clear reason when it is absent; under
``ASSIST_REQUIRE_DATA=1`` (CI) they fail with that reason instead
(tests/helpers_data.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers_data import missing

ROOT = Path(__file__).resolve().parent.parent

# Caches the agent writes (the demo clip, converted captioner graphs) go to a
# folder of this test session, not the user's ~/.cache; child processes the
# tests start inherit it.
_OWN_CACHE: str | None = None
if "ASSIST_CACHE" not in os.environ:
    _OWN_CACHE = os.environ["ASSIST_CACHE"] = tempfile.mkdtemp(prefix="assist-test-cache-")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's cache folder (~8 MB of converted graphs and clips): every
    test run used to leave one in the temp folder."""
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def shared_dir() -> Path:
    """The shared data folder: $ASSIST_SHARED, else ../shared beside the repo."""
    return Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared"))


def detector_dir() -> Path:
    """The real detector: $ASSIST_DETECTOR, else the shared OpenVINO YOLO11n."""
    env = os.environ.get("ASSIST_DETECTOR")
    return Path(env) if env else shared_dir() / "models" / "yolo11n_int8_openvino_model"


@pytest.fixture(scope="session")
def coco_dir() -> Path:
    """../shared/data/coco-mini (skips when absent; fails under ASSIST_REQUIRE_DATA=1)."""
    p = shared_dir() / "data" / "coco-mini"
    if not (p / "val2017").is_dir():
        missing(f"real COCO photos not found at {p} (set ASSIST_SHARED to the shared folder)")
    return p


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    """../shared/data/videos (skips when absent)."""
    p = shared_dir() / "data" / "videos"
    if not p.is_dir():
        missing(f"real street footage not found at {p} (set ASSIST_SHARED to the shared folder)")
    return p


@pytest.fixture(scope="session")
def detector_path() -> Path:
    """The real YOLO detector weights (skips when absent)."""
    p = detector_dir()
    if not p.exists():
        missing(f"real detector weights not found at {p} (set ASSIST_DETECTOR)")
    return p


@pytest.fixture
def offline_detector(detector_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run as offline users have it: the real detector, no hub, no captioner weights (descriptions
    from detections). For tests that run the pipeline in this process."""
    monkeypatch.setenv("ASSIST_DETECTOR", str(detector_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ASSIST_CAPTIONER", raising=False)
    return detector_path


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    """ultralytics' bundled bus.jpg (ships in the wheel)."""
    from ultralytics.utils import ASSETS

    p = Path(ASSETS) / "bus.jpg"
    if not p.exists():
        missing(f"ultralytics' bundled photo {p} is not installed (reinstall ultralytics)")
    return p


@pytest.fixture(scope="session")
def espeak_available() -> str:
    """The espeak-ng binary (skips when absent): use ``helpers_data.needs_espeak`` on a test."""
    from assist.speech.wav import espeak_binary

    binary = espeak_binary()
    if binary is None:
        missing("espeak-ng is not installed (sudo apt-get install espeak-ng; `make test` installs it when root)")
    return binary
