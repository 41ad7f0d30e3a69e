"""The world model's geometry: synthetic boxes of known size and distance
(pinhole camera), then the real detector on a zoom into a real photo and on
the real street footage (ranges, never exact values: the int8 detector's boxes
differ slightly between CPUs)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import pytest

from assist.config import HazardConfig
from assist.core.detection import Detection
from assist.hazards.geometry import (
    HEIGHT_PRIOR_M,
    WIDTH_PRIOR_M,
    bearing_deg,
    clock_hour,
    distance_m,
    focal_lengths,
    in_walking_path,
    proximity_band,
)
from assist.hazards.policy import HazardPolicy
from assist.hazards.tracker import IouTracker
from assist.hazards.world import WorldModel


def pinhole_box(label: str, dist: float, cx: float = 0.5, cy: float = 0.55, hfov: float = 70.0,
                aspect: float = 4 / 3) -> tuple[float, float, float, float]:
    """The normalised box an object of the class's prior size makes at ``dist`` metres (clipped to the frame)."""
    fx, fy = focal_lengths(hfov, aspect)
    h = HEIGHT_PRIOR_M[label] * fy / dist
    w = WIDTH_PRIOR_M[label] * fx / dist
    return (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(1.0, cx + w / 2), min(1.0, cy + h / 2))


@pytest.mark.parametrize("label", ["person", "car", "bus", "truck", "bicycle", "motorcycle", "dog"])
@pytest.mark.parametrize("dist", [3.0, 8.0, 25.0])
@pytest.mark.parametrize(("hfov", "aspect"), [(70.0, 4 / 3), (100.0, 16 / 9)])
def test_distance_of_a_synthetic_box_of_known_size(label: str, dist: float, hfov: float, aspect: float) -> None:
    box = pinhole_box(label, dist, hfov=hfov, aspect=aspect)
    assert distance_m(label, box, hfov, aspect) == pytest.approx(dist, rel=0.01)


def test_a_box_cut_by_the_frame_uses_the_side_that_is_not_cut() -> None:
    # A person 1 m away is 1.6 frame heights tall: cut top and bottom; the width still measures.
    box = pinhole_box("person", 1.0)
    assert box[1] == 0.0 and box[3] == 1.0 and 0.0 < box[0] < box[2] < 1.0
    assert distance_m("person", box) == pytest.approx(1.0, rel=0.01)
    # The height alone would say 1.6 m: wrong by the part of the body the frame cuts off.
    assert distance_m("person", (box[0], 0.0, box[2], 1.0)) < 1.05
    # Cut on every side (a bus filling the view): an upper bound, and still near.
    assert distance_m("bus", (0.0, 0.0, 1.0, 1.0)) <= distance_m("bus", pinhole_box("bus", 5.0))
    # Class priors matter: the same box is nearer for a dog than for a bus.
    b = (0.4, 0.5, 0.6, 0.8)
    assert distance_m("dog", b) < distance_m("person", b) < distance_m("bus", b)
    assert 0.2 <= distance_m("bus", (0.5, 0.5, 0.5001, 0.5001)) <= 200  # clamped


def test_clock_positions_follow_the_field_of_view() -> None:
    assert clock_hour(0.5) == 12 and clock_hour(0.0) == 11 and clock_hour(1.0) == 1
    assert clock_hour(0.0, 120.0) == 10 and clock_hour(1.0, 120.0) == 2  # wide lens: 60 degrees each side
    assert bearing_deg(1.0, 70.0) == pytest.approx(35.0)
    # Pinhole, not linear: halfway to the edge is atan(tan(35)/2), not 17.5 degrees.
    assert bearing_deg(0.75, 70.0) == pytest.approx(math.degrees(math.atan(math.tan(math.radians(35.0)) / 2)))


def test_bands_and_walking_path() -> None:
    assert [proximity_band(d, None, 5.0, 2.5) for d in (1.0, 2.5, 4.0, 5.5)] == ["very near", "very near", "near", "far"]
    assert proximity_band(2.7, "very near", 5.0, 2.5) == "very near"  # hysteresis: left only 15 % beyond
    assert proximity_band(3.2, "very near", 5.0, 2.5) == "near"
    assert in_walking_path(pinhole_box("person", 6.0, cx=0.5), 6.0)
    assert not in_walking_path(pinhole_box("person", 6.0, cx=0.9), 6.0)  # ~3.5 m to the side
    assert in_walking_path(pinhole_box("person", 1.2, cx=0.8), 1.2)  # close: 0.5 m to the side


def test_time_to_contact_from_distance_change_and_none_when_not_closing() -> None:
    def feed(dists: list[float]) -> list:
        world = WorldModel(HazardConfig())
        tracker = IouTracker()
        recs = []
        for i, d in enumerate(dists):
            t = i / 8
            recs.append(world.update(tracker.update([Detection("car", 0.9, pinhole_box("car", d))], t), t)[0])
        return recs

    # Closing at 3 m/s from 12 m: TTC = d / v.
    closing = feed([12.0 - 3.0 * i / 8 for i in range(16)])
    last = closing[-1]
    assert last.ttc_s is not None and last.ttc_s == pytest.approx(last.distance_m / 3.0, rel=0.25)
    # The distance is the median of the last three estimates: one detector run behind.
    assert last.approaching and last.distance_m == pytest.approx(12.0 - 3.0 * 14 / 8, rel=0.03)
    receding = feed([5.0 + 2.0 * i / 8 for i in range(16)])
    assert all(r.ttc_s is None and not r.approaching for r in receding)
    still = feed([7.0] * 16)
    assert all(r.ttc_s is None or r.ttc_s > 30 for r in still)


def test_the_user_is_told_the_state_that_was_said() -> None:
    world = WorldModel(HazardConfig())
    tracker = IouTracker()
    world.update(tracker.update([Detection("dog", 0.9, pinhole_box("dog", 3.0))], 0.0), 0.0)
    assert world.get(1) is not None and world.get(1).told is None
    world.mark_told(1, 0.0)
    told = world.get(1).told
    assert told is not None and told.distance_m == pytest.approx(3.0, rel=0.01) and told.proximity == "near"
    world.reset()
    assert world.get(1) is None


def test_what_the_user_was_told_outlives_the_track_and_is_claimed_once_per_object() -> None:
    """Two people told about, one drifting from ahead to the left (a zoom), leave the view;
    back after a cut, one ahead and one on the left, each new track inherits one told
    state; a third person, on the right, is new. Later than TOLD_MEMORY_S nobody inherits."""
    from assist.hazards.world import TOLD_MEMORY_S

    def run(gap_s: float) -> list:
        world = WorldModel(HazardConfig())
        tracker = IouTracker()
        t = 0.0
        for k in range(9):  # A stays on the left; B drifts from ahead to the left
            dets = [Detection("person", 0.9, pinhole_box("person", 4.0, cx=0.12)),
                    Detection("person", 0.9, pinhole_box("person", 4.0, cx=0.5 - 0.03 * k))]
            world.update(tracker.update(dets, t), t)
            if k == 0:
                for obj in world.objects:
                    world.mark_told(obj.track_id, t)
            t += 0.125
        assert {o.direction for o in world.objects} == {"left"}
        while t < 1.0 + gap_s:
            world.update(tracker.update([], t), t)
            t += 0.125
        assert not world.objects and (gap_s > TOLD_MEMORY_S or len(world.recalls) == 2)
        back = [Detection("person", 0.9, pinhole_box("person", 4.0, cx=c)) for c in (0.12, 0.5, 0.88)]
        return world.update(tracker.update(back, t), t)

    back = {r.direction: r for r in run(3.0)}
    assert back["left"].told is not None and back["ahead"].told is not None and back["right"].told is None
    assert back["left"].track_id > 2 and back["ahead"].told.proximity == "near"
    assert all(r.told is None for r in run(TOLD_MEMORY_S + 1.0))


# ------------------------------------------------------------------ the real detector


@pytest.fixture(scope="module")
def detector(detector_path: Path):
    from assist.hazards.detector import YoloDetector

    return YoloDetector(str(detector_path), HazardConfig())


def test_zooming_onto_a_real_bus_reports_a_shrinking_distance(detector, bus_jpg: Path) -> None:
    img = cv2.imread(str(bus_jpg))
    h, w = img.shape[:2]
    an = HazardPolicy(HazardConfig())
    dists = []
    for i in range(12):
        # Crop towards the bus (upper middle of the photo): the view narrows as a zoom does.
        k = 1.0 - 0.05 * i
        cw, ch = int(w * k), int(h * k)
        x0, y0 = (w - cw) // 2, int((h - ch) * 0.4)
        frame = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (640, 480), interpolation=cv2.INTER_AREA)
        an.update(detector.detect(frame), i / 8, i, aspect=640 / 480)
        buses = [r for r in an.world.objects if r.label == "bus" and r.visible]
        if buses:
            dists.append(max(buses, key=lambda r: r.bbox[3] - r.bbox[1]).distance_m)
    assert len(dists) >= 8, dists
    assert dists[-1] < 0.75 * dists[0], dists
    # Mostly falling (a box can jitter one step up, not the trend).
    assert sum(b <= a * 1.05 for a, b in zip(dists, dists[1:], strict=False)) >= len(dists) - 3, dists


@pytest.fixture(scope="module")
def sidewalk_tracks(detector, videos_dir: Path) -> dict[int, list]:
    """Every record of the real first-person sidewalk walk, per track (detector at 12.5 Hz)."""
    cap = cv2.VideoCapture(str(videos_dir / "sidewalk_firstperson.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    an = HazardPolicy(HazardConfig())
    tracks: dict[int, list] = {}
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i % 2 == 0:
            h, w = img.shape[:2]
            an.update(detector.detect(img), i / fps, i, aspect=w / h)
            for r in an.world.objects:
                if r.visible:
                    tracks.setdefault(r.track_id, []).append(r)
        i += 1
    cap.release()
    assert tracks, "nothing detected in the sidewalk footage"
    return tracks


@pytest.mark.slow
def test_real_footage_distances_are_plausible(sidewalk_tracks: dict[int, list]) -> None:
    for recs in sidewalk_tracks.values():
        for r in recs:
            assert 0.2 <= r.distance_m <= 200 and 1 <= r.clock <= 12
    # A person walking up to the camera ends within a few metres, having started farther.
    walkers = [recs for recs in sidewalk_tracks.values() if recs[0].label == "person" and len(recs) >= 6
               and recs[-1].distance_m < 0.8 * recs[0].distance_m]
    assert walkers, "no person walking up in the sidewalk footage"
    assert min(recs[-1].distance_m for recs in walkers) <= 6.0
    assert all(recs[0].distance_m >= 6.0 for recs in walkers)
    # Cars ahead on the road are metres away, not "1 metre".
    cars = [r for recs in sidewalk_tracks.values() for r in recs if r.label == "car"]
    assert len(cars) >= 10
    assert min(r.distance_m for r in cars) >= 4.0
    assert math.isfinite(sum(r.distance_m for r in cars))


def test_image_command_hazards_use_the_same_distances(detector, bus_jpg: Path) -> None:
    """--image lists hazards nearest first, with the live warnings' distance words."""
    from assist.app.image_command import image_hazards
    from assist.config import Config

    img = cv2.imread(str(bus_jpg))
    h, w = img.shape[:2]
    cfg = Config()
    found = image_hazards(detector.detect(img), cfg, aspect=w / h)
    assert {hz.label for hz in found} >= {"bus", "person"}
    # Vehicles first (tier), then people; the people in front of the bus are near.
    assert found[0].label == "bus"
    people = [hz for hz in found if hz.label == "person"]
    assert people and all(hz.proximity in ("near", "very near") for hz in people)
    bus = next(hz for hz in found if hz.label == "bus")
    assert bus.text.startswith("Bus ahead") and ("metres" in bus.text or "very near" in bus.text)
