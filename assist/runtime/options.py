"""What one run is asked to do (:class:`RunOptions`, from the command line) and
which parts it is built from (:class:`RunSeams`: the factories a benchmark or a
fault injector replaces; None everywhere means the real parts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only: options stay cheap to import for the command line
    from assist.capture import SourceFactory
    from assist.config import Config, HazardConfig
    from assist.core.events import EventLog
    from assist.describe import Describer
    from assist.hazards import Detector
    from assist.runtime.observer import RunObserver
    from assist.speech.backends import BackendFactory


@dataclass
class RunOptions:
    """What the command line asks of one run (everything not in config.toml)."""

    source_kind: str  # camera | video | image | images | demo
    source_value: str
    headless: bool = False
    every_frame: bool = False
    max_seconds: float | None = None
    max_frames: int | None = None
    save_video: Path | None = None
    speech_wav: Path | None = None
    log_path: Path | None = None
    log_gate: bool = False
    control: str | None = None  # --control PATH|- (assist/runtime/control.py)


#: Builds the detector from its weights path (called in the hazard worker's thread).
DetectorFactory = Callable[[str, "HazardConfig"], "Detector"]
#: Builds the caption engine (called in the caption worker's thread).
DescriberFactory = Callable[["Config", "EventLog"], "Describer"]


@dataclass
class RunSeams:
    """The parts of a run that can be injected (as roboflow/inference's
    ``VideoSource.init(video_reference=callable)``): the soak loops its footage
    through ``source_factory`` and watches through ``observer``; the fault
    launcher wraps the model factories and the speech backend's child spawner.
    Production passes nothing and gets the real parts."""

    source_factory: SourceFactory | None = None  # None: open the source the options name
    speech_backend_factory: BackendFactory | None = None  # None: speech.backends.make_backend
    detector_factory: DetectorFactory | None = None  # None: hazards.detector.YoloDetector
    describer_factory: DescriberFactory | None = None  # None: describe.engine.CaptionEngine.create
    observer: RunObserver | None = None  # None: runtime.observer.NullRunObserver


__all__ = ["DescriberFactory", "DetectorFactory", "RunOptions", "RunSeams"]
