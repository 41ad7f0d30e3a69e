"""``python run.py --image PATH``: caption one photo, list its hazards, exit.

This replaces the old demo's ``run_inference.py --image`` (which never parsed
its flag). A single frame cannot show motion, so hazards are listed by tier,
direction and proximity without the multi-frame confirmation of the live
policy; "approaching" is never claimed from one photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assist.app import exitcodes
from assist.config import Config
from assist.core.detection import Detection
from assist.core.events import EventLog
from assist.hazards.detector import load_error, required_detector_path


@dataclass(frozen=True)
class ImageHazard:
    """One hazard-class object seen in a still image."""

    label: str
    tier: str
    direction: str
    proximity: str
    confidence: float
    text: str


def image_hazards(detections: list[Detection], cfg: Config) -> list[ImageHazard]:
    """Hazard-tier objects, nearest (tallest) first, each with a spoken phrase."""
    from assist.hazards.geometry import direction_of, proximity_of, tier_map
    from assist.speech.phrases import hazard_phrase

    tiers = tier_map(cfg.hazards)
    out = []
    for det in sorted(detections, key=lambda d: d.height, reverse=True):
        tier = tiers.get(det.label)
        if tier is None:
            continue
        direction = direction_of(det.center_x, cfg.hazards.ahead_width)
        proximity = proximity_of(det.height, cfg.hazards)
        text = hazard_phrase(det.label, 1, direction, proximity, False, cfg.speech.language)
        out.append(ImageHazard(det.label, tier, direction, proximity, det.confidence, text))
    return out


def describe_image_cli(path: Path, cfg: Config) -> int:
    """Print the caption and hazards of one image; returns the exit code."""
    from assist.capture.imaging import read_image

    image = read_image(path, cfg.camera.max_side_px)  # SourceError: exit 3
    events = EventLog()
    detections: list[Detection] | None = None  # None: no detector ran (nothing to ground against)
    model_path = required_detector_path(cfg.hazards, events)  # DetectorModelMissing: exit 4
    if model_path is not None:
        from assist.hazards.detector import YoloDetector

        try:
            detector = YoloDetector(model_path, cfg.hazards)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem for the user
            raise load_error(model_path, exc) from None
        detections = detector.detect(image)
    caption = "Descriptions are disabled (caption.enabled = false)."
    source = "none"
    if cfg.caption.enabled:
        from assist.describe.engine import CaptionEngine

        engine = CaptionEngine.create(cfg.caption, events, language=cfg.speech.language, hazards=cfg.hazards)
        result = engine.describe(image, detections)
        caption, source = result.text, result.source
    print(f"Caption: {caption}" + (" (from detections)" if source == "detections" else ""))
    hazards = image_hazards(detections or [], cfg)
    if hazards:
        print("Hazards:")
        for hz in hazards:
            print(f"  - {hz.label} ({hz.tier}): {hz.direction}, {hz.proximity}, confidence {hz.confidence:.2f}"
                  f" -> \"{hz.text}\"")
    else:
        print("Hazards: none")
    if cfg.speech.backend != "none":
        _speak([caption, *[h.text for h in hazards[:3]]], cfg, events)
    return exitcodes.OK


def _speak(texts: list[str], cfg: Config, events: EventLog) -> None:
    """Say the caption and the nearest hazards, then return (bounded wait)."""
    from assist.core.priority import Priority
    from assist.speech.arbiter import SpeechArbiter
    from assist.speech.backends import make_backend

    arbiter = SpeechArbiter(make_backend(cfg.speech, events), events, cfg.speech)
    arbiter.start()
    try:
        # All at MESSAGE level, in order: a TEXT caption would be cancelled by
        # the hazard messages queued after it.
        for text in texts:
            arbiter.say(text, Priority.MESSAGE, t_capture=events.clock.now())
        arbiter.wait_idle(30.0)
    finally:
        arbiter.stop(timeout=1.0)
