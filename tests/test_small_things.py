"""Small things users noticed (issue 13, item 8), with the real detector and
real files written by OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from assist.config import CameraConfig, Config
from helpers_cli import read_log, run_cli


@pytest.mark.slow
def test_a_one_frame_video_is_described(tmp_path: Path, bus_jpg: Path, detector_path: Path) -> None:
    """Before: a one-frame video said nothing (the scene gate never settles, hazards are never confirmed)."""
    img = cv2.resize(cv2.imread(str(bus_jpg)), (320, 400))
    clip = tmp_path / "one.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 400))
    writer.write(img)
    writer.release()
    assert cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT) == 1
    log = tmp_path / "run.jsonl"
    proc = run_cli("--video", str(clip), "--headless", "--speech", "none", "--every-frame", "--log", str(log),
                   env={"ASSIST_DETECTOR": str(detector_path)}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    events = read_log(log)
    captions = [e for e in events if e["type"] == "caption"]
    assert len(captions) == 1 and captions[0]["frame"] == 0 and captions[0]["text"], events
    assert "bus" in {e["label"] for e in events if e["type"] == "hazard"}  # as --image lists it
    assert "CAPTION" in proc.stdout


@pytest.mark.slow
def test_a_corrupt_photo_in_a_folder_takes_no_time_and_each_photo_is_named(tmp_path: Path, bus_jpg: Path,
                                                                          detector_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    bus = cv2.resize(cv2.imread(str(bus_jpg)), (320, 400))
    cv2.imwrite(str(folder / "01_bus.jpg"), bus)
    (folder / "02_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 a cut JPEG header")
    cv2.imwrite(str(folder / "03_mirror.jpg"), cv2.flip(bus, 1))
    log = tmp_path / "run.jsonl"
    proc = run_cli("--images", str(folder), "--headless", "--speech", "none", "--every-frame", "--log", str(log),
                   env={"ASSIST_DETECTOR": str(detector_path)}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    events = read_log(log)
    captions = [e for e in events if e["type"] == "caption"]
    assert [e.get("file") for e in captions] == ["01_bus.jpg", "03_mirror.jpg"], captions
    # Video time on the every-frame clock: the second photo comes one slot after the first, not two.
    slot = 1.0 / CameraConfig().images_fps
    assert [e["t"] for e in captions] == pytest.approx([0.0, slot], abs=0.01), captions
    end = [e for e in events if e["type"] == "status" and e.get("event") == "end_of_input"]
    assert end[0]["skipped"] == 1 and end[0]["frames"] == 2, end
    for name in ("01_bus.jpg", "03_mirror.jpg"):
        assert any("CAPTION" in ln and name in ln for ln in proc.stdout.splitlines()), proc.stdout
    assert "02_broken.jpg" in proc.stderr  # the skipped one is named too


def test_image_hazards_are_grouped_and_most_urgent_first(bus_jpg: Path, detector_path: Path) -> None:
    """bus.jpg shows a bus and four people: with three directions, at least two people share one,
    so a per-object list repeats a phrase; the grouped one never does."""
    from assist.app.image_command import image_hazards
    from assist.hazards.detector import YoloDetector

    cfg = Config()
    detections = YoloDetector(str(detector_path), cfg.hazards).detect(cv2.imread(str(bus_jpg)))
    people = [d for d in detections if d.label == "person"]
    assert len(people) >= 3 and any(d.label == "bus" for d in detections)
    hazards = image_hazards(detections, cfg)
    keys = [(h.label, h.direction) for h in hazards]
    assert len(keys) == len(set(keys)), keys  # one entry per class and direction
    assert len({h.text for h in hazards}) == len(hazards), [h.text for h in hazards]
    assert sum(h.count for h in hazards if h.label == "person") == len(people)
    if len(people) >= 4:  # three directions: at least two of them together, said as one phrase
        assert any(h.count >= 2 and h.text.split()[0] in ("Two", "Three", "Four") for h in hazards), hazards
    rank = {"high": 0, "medium": 1, "low": 2}
    tiers = [rank[h.tier] for h in hazards]
    assert tiers == sorted(tiers) and hazards[0].label == "bus", hazards  # the bus (high tier) first
