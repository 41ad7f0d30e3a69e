"""``python run.py --image PATH``: caption one photo, list its hazards, exit.

This replaces the old demo's ``run_inference.py --image`` (which never parsed
its flag). A single frame cannot show motion, so hazards are listed by tier,
direction and proximity without the multi-frame confirmation of the live
policy; "approaching" is never claimed from one photo.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assist.app import exitcodes
from assist.config import Config
from assist.core.detection import Detection
from assist.core.events import EventLog
from assist.hazards.detector import load_error, required_detector_path


@dataclass(frozen=True)
class ImageHazard:
    """The hazard-class objects of one class in one direction in a still image
    (``count`` of them; proximity and confidence of the nearest)."""

    label: str
    tier: str
    direction: str
    proximity: str
    confidence: float
    text: str
    count: int = 1


_TIER_RANK = {"high": 0, "medium": 1, "low": 2}
_PROXIMITY_RANK = {"very near": 0, "near": 1, "far": 2}


def image_hazards(detections: list[Detection], cfg: Config, aspect: float | None = None) -> list[ImageHazard]:
    """Hazard-tier objects grouped by class and direction ("Two people ahead",
    never "Person ahead" twice), most urgent first: tier, then the proximity
    of the group's nearest object, then its distance. Each group has its phrase.

    Distance in metres from the box and the class's size prior (``aspect``:
    the photo's width / height), as the live warnings measure it; the bands
    are ``hazards.near_m`` / ``very_near_m``; words follow ``speech.distance_unit``
    and ``speech.direction_style``.
    """
    from assist.hazards.geometry import DEFAULT_ASPECT, clock_hour, direction_of, distance_m, proximity_band, tier_map
    from assist.speech.phrases import hazard_phrase

    tiers = tier_map(cfg.hazards)
    hfov, ratio = cfg.camera.hfov_deg, aspect or DEFAULT_ASPECT

    def dist(d: Detection) -> float:
        return distance_m(d.label, d.bbox, hfov, ratio)

    groups: dict[tuple[str, str], list[Detection]] = {}
    for det in sorted(detections, key=dist):  # nearest first
        if det.label in tiers:
            groups.setdefault((det.label, direction_of(det.center_x, cfg.hazards.ahead_width)), []).append(det)
    ranked = []
    for (label, direction), dets in groups.items():
        nearest = dets[0]
        proximity = proximity_band(dist(nearest), None, cfg.hazards.near_m, cfg.hazards.very_near_m)
        text = hazard_phrase(label, len(dets), direction, proximity, False, cfg.speech.language,
                             distance_m=dist(nearest), clock=clock_hour(nearest.center_x, hfov),
                             distance_unit=cfg.speech.distance_unit, direction_style=cfg.speech.direction_style)
        hazard = ImageHazard(label, tiers[label], direction, proximity, nearest.confidence, text, len(dets))
        ranked.append(((_TIER_RANK[hazard.tier], _PROXIMITY_RANK.get(proximity, 3), dist(nearest)), hazard))
    out = [hazard for _, hazard in sorted(ranked, key=lambda pair: pair[0])]
    return out


def describe_image_cli(path: Path, cfg: Config) -> int:
    """Print the caption and hazards of one image; returns the exit code."""
    from assist.capture.imaging import read_image

    image = read_image(path, cfg.camera.max_side_px)  # SourceError: exit 3
    events = EventLog()
    events.add_sink(_print_brief_status)
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
    hazards = image_hazards(detections or [], cfg, aspect=image.shape[1] / max(1, image.shape[0]))
    if hazards:
        print("Hazards:")
        for hz in hazards:
            many = f" x{hz.count}" if hz.count > 1 else ""
            print(f"  - {hz.label}{many} ({hz.tier}): {hz.direction}, {hz.proximity}, confidence "
                  f"{hz.confidence:.2f} -> \"{hz.text}\"")
    else:
        print("Hazards: none")
    if cfg.speech.backend != "none":
        _speak([caption, *[h.text for h in hazards[:3]]], cfg, events)
    return exitcodes.OK


def _print_brief_status(event: dict[str, Any]) -> None:
    """A status event's one-line ``brief`` (the missing captioner) on stderr; its long text stays in -v."""
    if event.get("type") == "status" and event.get("brief"):
        print(f"note: {event['brief']}", file=sys.stderr, flush=True)


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
