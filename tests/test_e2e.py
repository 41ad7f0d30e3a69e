"""End to end: real clips through the real pipeline (real OpenCV decoding, the
real detector, the scene gate, the caption engine and the speech arbiter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import pytest

from assist.config import Config
from assist.runtime.options import RunOptions
from helpers_clips import load_photo, pan_tour, pick_photos, read_video, still, write_video
from helpers_pipeline import run

pytestmark = pytest.mark.slow


def offline_cfg(**speech: Any) -> Config:
    cfg = Config()
    cfg.speech.backend = "none"
    for k, v in speech.items():
        setattr(cfg.speech, k, v)
    return cfg


def test_realtime_pan_tour_logs_one_caption_per_scene(coco_dir: Path, detector_path: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSIST_DETECTOR", str(detector_path))
    photos = [load_photo(p) for p in pick_photos(coco_dir, 3)]
    clip = pan_tour(photos)
    path = write_video(clip.frames, tmp_path / "tour.mp4", fps=clip.fps)
    cfg = offline_cfg()
    code, sink = run(cfg, RunOptions("video", str(path), headless=True))
    assert code == 0
    captions = sink.of_type("caption")
    assert len(captions) == len(clip.scenes), [(c["frame"], c["text"]) for c in captions]
    for caption, (start, end) in zip(captions, clip.scenes, strict=True):
        assert start <= caption["frame"] < end, (caption["frame"], clip.scenes)
    statuses = [e["event"] for e in sink.of_type("status")]
    assert statuses[0] == "started" and statuses[-1] == "stopped"


@pytest.mark.parametrize("photo", ["bus.jpg", "zidane.jpg"])
def test_still_street_photo_20s_one_caption_each_hazard_once(photo: str, detector_path: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 7: a still scene for 20 s is described once and nothing is repeated."""
    from ultralytics.utils import ASSETS

    monkeypatch.setenv("ASSIST_DETECTOR", str(detector_path))
    image = load_photo(Path(ASSETS) / photo, size=(640, 480))
    clip = still(image, 20.0)
    path = write_video(clip.frames, tmp_path / "still.mp4", fps=clip.fps)
    code, sink = run(offline_cfg(), RunOptions("video", str(path), headless=True, every_frame=True))
    assert code == 0
    assert len(sink.of_type("caption")) == 1
    hazards = sink.of_type("hazard")
    assert hazards, "a street photo has people in it"
    ids = [h["track_id"] for h in hazards]
    assert len(ids) == len(set(ids)), "a still object must be announced once"
    spoken = [e["text"] for e in sink.of_type("speech", event="start")]
    assert len(spoken) == len(set(spoken)), spoken
    assert not sink.of_type("speech", event="suppressed"), "nothing should even try to repeat itself"


def test_every_frame_runs_are_identical(detector_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--every-frame: the same file gives the same log twice (times included)."""
    from ultralytics.utils import ASSETS

    monkeypatch.setenv("ASSIST_DETECTOR", str(detector_path))
    image = load_photo(Path(ASSETS) / "bus.jpg", size=(640, 480))
    frames = still(image, 2.0).frames
    # approach: a zoom on the bus, so there is something to warn about
    h, w = image.shape[:2]
    for i in range(30):
        s = 1.0 + i * 0.04
        m = cv2.getRotationMatrix2D((w * 0.45, h * 0.5), 0, s)
        frames.append(cv2.warpAffine(image, m, (w, h)))
    path = write_video(frames, tmp_path / "z.mp4", fps=10.0)

    def strip(events: list[dict]) -> list[tuple]:
        return [(e["t"], e["type"], e["frame"], e["text"], e.get("event")) for e in events
                if e["type"] != "caption"] + [(e["t"], e["frame"], e["text"]) for e in events if e["type"] == "caption"]

    runs = [run(offline_cfg(), RunOptions("video", str(path), headless=True, every_frame=True))[1] for _ in range(2)]
    assert strip(runs[0].events) == strip(runs[1].events)
    assert runs[0].of_type("hazard")


def test_images_folder_describes_every_photo_in_name_order(coco_dir: Path, detector_path: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """--images DIR: each photo is its own scene, described with its own detections."""
    import shutil

    monkeypatch.setenv("ASSIST_DETECTOR", str(detector_path))
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = pick_photos(coco_dir, 3, offset=2)
    for i, p in enumerate(photos):  # names sort differently from the COCO ids on purpose
        shutil.copy(p, folder / f"img{10 - i * 4}.jpg")  # img10, img6, img2 -> played img2, img6, img10
    code, sink = run(offline_cfg(), RunOptions("images", str(folder), headless=True, every_frame=True))
    assert code == 0
    captions = sink.of_type("caption")
    assert [c["frame"] for c in captions] == [0, 1, 2]
    assert [c["trigger"] for c in captions] == ["image"] * 3
    from assist.capture.imaging import read_image
    from assist.describe.from_detections import describe_detections
    from assist.hazards.detector import YoloDetector

    detector = YoloDetector(str(detector_path), offline_cfg().hazards)
    for caption, photo in zip(captions, reversed(photos), strict=True):
        cfg = offline_cfg()
        expected = describe_detections(detector.detect(read_image(photo, cfg.camera.max_side_px)),
                                       ahead_width=cfg.hazards.ahead_width)
        assert caption["text"] == expected


def test_save_video_through_the_cli_writes_the_annotated_frames(detector_path: Path, tmp_path: Path) -> None:
    """`run.py --video X --save-video Y`: Y is playable, same frame count and size, boxes drawn on it."""
    import numpy as np
    from ultralytics.utils import ASSETS

    from helpers_cli import run_cli

    image = load_photo(Path(ASSETS) / "bus.jpg", size=(640, 480))
    src = write_video(still(image, 2.0).frames, tmp_path / "in.mp4", fps=10.0)
    out = tmp_path / "annotated.mp4"
    proc = run_cli("--video", str(src), "--headless", "--speech", "none", "--every-frame", "--save-video", str(out),
                   env={"ASSIST_DETECTOR": str(detector_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames, _ = read_video(out)
    assert len(frames) == 20 and frames[0].shape == (480, 640, 3)
    first = read_video(src)[0][0]
    # the overlay (boxes, labels, caption band) changed the picture well beyond codec noise
    diff = np.abs(frames[-1].astype(int) - first.astype(int)).mean(axis=2)
    assert (diff > 60).mean() > 0.01
