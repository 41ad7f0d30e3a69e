"""The real detector: model resolution, load errors, COCO recall, bus.jpg, and a zoom-in clip end to end."""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from assist.config import HazardConfig
from assist.hazards.detector import DetectorModelMissing, YoloDetector, is_online, require_detector, resolve_detector
from assist.hazards.policy import HazardPolicy


@pytest.fixture(scope="module")
def detector(detector_path: Path) -> YoloDetector:
    import torch

    torch.set_num_threads(1)
    return YoloDetector(str(detector_path), HazardConfig())


# ------------------------------------------------------------------ resolution
def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    (models / "yolo11n_openvino_model").mkdir(parents=True)
    explicit = tmp_path / "mine.onnx"
    explicit.write_bytes(b"x")
    env_file = tmp_path / "env.pt"
    env_file.write_bytes(b"x")
    monkeypatch.delenv("ASSIST_DETECTOR", raising=False)
    cfg = dataclasses.replace(HazardConfig(), model="yolo11n.pt")
    # models/ folder: an exported folder of the configured name's stem is found.
    assert resolve_detector(cfg, models_dir=models, online=False) == str(models / "yolo11n_openvino_model")
    # ... and models/<name> itself wins over an export of it.
    (models / "yolo11n.pt").write_bytes(b"x")
    assert resolve_detector(cfg, models_dir=models, online=False) == str(models / "yolo11n.pt")
    # The config's own path beats the models/ folder.
    assert resolve_detector(dataclasses.replace(cfg, model=str(explicit)), models_dir=models) == str(explicit)
    # The environment beats everything.
    monkeypatch.setenv("ASSIST_DETECTOR", str(env_file))
    assert resolve_detector(dataclasses.replace(cfg, model=str(explicit)), models_dir=models) == str(env_file)


def test_download_by_name_only_online_and_only_known_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSIST_DETECTOR", raising=False)
    cfg = dataclasses.replace(HazardConfig(), model="yolo11s.pt")
    assert resolve_detector(cfg, models_dir=tmp_path, online=True) == "yolo11s.pt"
    assert resolve_detector(cfg, models_dir=tmp_path, online=False) is None
    unknown = dataclasses.replace(cfg, model="my_detector.pt")
    assert resolve_detector(unknown, models_dir=tmp_path, online=True) is None


def test_env_pointing_nowhere_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSIST_DETECTOR", str(tmp_path / "nope.pt"))
    with pytest.raises(DetectorModelMissing, match="ASSIST_DETECTOR=.*nope.pt"):
        resolve_detector(HazardConfig(), models_dir=tmp_path)


def test_missing_model_offline_fails_fast_with_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSIST_DETECTOR", raising=False)
    monkeypatch.setenv("YOLO_OFFLINE", "1")  # the real network probe must also honour it
    cfg = dataclasses.replace(HazardConfig(), model="yolo11x.pt")
    t0 = time.monotonic()
    with pytest.raises(DetectorModelMissing) as err:
        require_detector(cfg, models_dir=tmp_path)
    assert time.monotonic() - t0 < 2.0
    msg = str(err.value)
    assert "models/yolo11x.pt" in msg and "ASSIST_DETECTOR" in msg and "\n" not in msg
    with pytest.raises(DetectorModelMissing, match="no such detector weights"):
        YoloDetector(str(tmp_path / "absent.pt"), cfg)


def test_network_probe_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    t0 = time.monotonic()
    is_online(timeout_s=0.5)
    assert time.monotonic() - t0 < 1.5


def test_corrupt_weights_are_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DetectorModelMissing, match="broken.pt: cannot load detector weights"):
        YoloDetector(str(bad), HazardConfig())


@pytest.mark.slow
def test_pytorch_weights_load_and_honour_the_configured_size(tmp_path: Path) -> None:
    """A .pt file (built offline from ultralytics' yolo11n.yaml: real architecture, untrained weights)
    loads through the same path and, being dynamic, runs at hazards.imgsz_px (a static export cannot)."""
    from ultralytics import YOLO

    weights = tmp_path / "untrained.pt"
    YOLO("yolo11n.yaml").save(str(weights))
    det = YoloDetector(str(weights), dataclasses.replace(HazardConfig(), imgsz_px=416))
    assert det.imgsz == 416 and det.device in ("cpu", "cuda:0")
    out = det.detect(np.full((240, 320, 3), 127, np.uint8))
    assert isinstance(out, list) and det.last_latency_ms is not None


@pytest.mark.slow
def test_static_export_reports_its_own_size(detector_path: Path) -> None:
    det = YoloDetector(str(detector_path), dataclasses.replace(HazardConfig(), imgsz_px=640))
    assert det.imgsz == 320  # the shared OpenVINO export is fixed at 320


# ------------------------------------------------------------------ real detector
def test_bus_jpg_bus_and_people(detector: YoloDetector, bus_jpg: Path) -> None:
    dets = detector.detect(cv2.imread(str(bus_jpg)))
    labels = collections.Counter(d.label for d in dets)
    assert labels["bus"] >= 1 and labels["person"] >= 3, labels
    bus = next(d for d in dets if d.label == "bus")
    assert bus.height > 0.35 and bus.bbox[0] < 0.1 and bus.bbox[2] > 0.9  # the bus spans the frame
    assert all(0 <= v <= 1 for d in dets for v in d.bbox)
    assert all(d.confidence >= detector.cfg.confidence for d in dets)
    assert [d.confidence for d in dets] == sorted((d.confidence for d in dets), reverse=True)
    assert detector.last_latency_ms is not None and detector.last_latency_ms > 0


@pytest.mark.slow
def test_coco_image_level_recall_of_hazard_classes(detector: YoloDetector, coco_dir: Path) -> None:
    """An image counts for a hazard class when annotated with an instance large enough for the
    policy to act on (high/medium tiers: box height >= hazards.min_height; low tier, announced only
    when very near: >= hazards.near_height, a margin below very_near_height), and is a hit when the
    detector finds that class anywhere in it."""
    cfg = detector.cfg
    tiers = {**{c: cfg.low for c in cfg.low}, **{c: cfg.medium for c in cfg.medium}, **{c: cfg.high for c in cfg.high}}
    min_h = {c: (cfg.near_height if c in cfg.low and c not in cfg.medium + cfg.high else cfg.min_height) for c in tiers}
    ann = json.loads((coco_dir / "annotations" / "instances_val2017.json").read_text())
    cats = {c["id"]: c["name"] for c in ann["categories"]}
    images = {i["id"]: i for i in ann["images"] if (coco_dir / "val2017" / i["file_name"]).exists()}
    wanted: dict[str, set[str]] = collections.defaultdict(set)
    for a in ann["annotations"]:
        im, name = images.get(a["image_id"]), cats[a["category_id"]]
        if im and name in tiers and not a.get("iscrowd") and a["bbox"][3] / im["height"] >= min_h[name]:
            wanted[im["file_name"]].add(name)
    assert len(wanted) >= 30  # the set really has hazard images
    pairs = hits = 0
    missed: collections.Counter[str] = collections.Counter()
    for name, classes in wanted.items():
        found = {d.label for d in detector.detect(cv2.imread(str(coco_dir / "val2017" / name)))}
        pairs += len(classes)
        hits += len(classes & found)
        missed.update(classes - found)
    recall = hits / pairs
    # 53 of 65 pairs here (0.815). Not a knife edge: the lowest score among the hits is 0.33 against
    # hazards.confidence 0.25, and the misses have no box of their class even at 0.05, far beyond the
    # few hundredths that int8 scores move between AVX2 and AVX-512 VNNI.
    assert recall >= 0.8, f"recall {recall:.2f} over {pairs} image/class pairs; missed {dict(missed)}"


# ------------------------------------------------------------------ zoom clip end to end
def write_zoom_clip(bus_jpg: Path, path: Path, fps: float = 25.0, n: int = 80) -> None:
    """Walking towards the bus: a 640x480 view of bus.jpg (grey around it) at constant closing speed.

    Zoom z(t) = z0 * T0 / (T0 - t): apparent size ~ 1/distance, time to contact T0 = 4.5 s at the
    start; over n = 80 frames (3.2 s) the bus grows from 0.39 of the frame height to more than all of it.
    """
    src = cv2.imread(str(bus_jpg))
    h, w = src.shape[:2]
    cx, cy = 0.51 * w, 0.45 * h  # centre of the bus
    z0, t_contact, out_w, out_h = 0.45, 4.5, 640, 480
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (out_w, out_h))
    assert vw.isOpened()
    for i in range(n):
        z = z0 * t_contact / (t_contact - i / fps)
        cw = w / z
        ch = cw * out_h / out_w
        m = np.float32([[out_w / cw, 0, -(cx - cw / 2) * out_w / cw], [0, out_h / ch, -(cy - ch / 2) * out_h / ch]])
        vw.write(cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)))
    vw.release()


@pytest.mark.slow
def test_zoom_clip_warns_the_bus_is_approaching(detector: YoloDetector, bus_jpg: Path, tmp_path: Path) -> None:
    clip = tmp_path / "zoom.mp4"
    fps, n = 25.0, 80
    write_zoom_clip(bus_jpg, clip, fps, n)
    cap = cv2.VideoCapture(str(clip))
    detections = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        detections.append(detector.detect(frame))
    cap.release()
    assert len(detections) == n
    # Every frame (--every-frame) and every third frame (~8 Hz, the live hazard worker's rate).
    for step in (1, 3):
        analyzer = HazardPolicy(detector.cfg)
        anns = [a for i in range(0, n, step) for a in analyzer.update(detections[i], i / fps, i)]
        bus = [a for a in anns if a.label == "bus" and a.approaching]
        assert bus, (step, [a.text for a in anns])
        assert bus[0].frame < n - 1 and bus[0].direction in ("left", "ahead", "right")
        assert bus[0].event_fields()["approaching"] is True
        assert len({a.text for a in anns}) == len(anns)  # nothing said twice
        # No nagging, by the policy's own rule rather than a count from one CPU (where a borderline
        # person or the bus also seen as a truck adds a phrase): the clip is shorter than
        # hazards.class_cooldown_s, so each class only escalates (present -> approaching -> very near).
        assert n / fps < detector.cfg.class_cooldown_s
        for label in {a.label for a in anns}:
            ranks = [2 if a.proximity == "very near" else 1 if a.approaching else 0 for a in anns if a.label == label]
            assert ranks == sorted(set(ranks)), (step, label, [a.text for a in anns])


# ------------------------------------------------------------------ OpenVINO without ultralytics
@pytest.mark.slow
def test_openvino_runner_gives_ultralytics_detections(detector: YoloDetector, detector_path: Path,
                                                      coco_dir: Path, bus_jpg: Path) -> None:
    """The direct OpenVINO path (the default for an OpenVINO export) reproduces ultralytics' own
    prediction of the same export: same labels in the same order, boxes and confidences equal."""
    from ultralytics import YOLO

    assert detector._ov is not None  # the shared export takes the direct path
    ref = YoloDetector(str(detector_path), detector.cfg)
    ref._ov, ref.model, ref.device, ref.half = None, YOLO(str(detector_path), task="detect"), "cpu", False
    images = [cv2.imread(str(bus_jpg))] + [cv2.imread(str(p)) for p in sorted((coco_dir / "val2017").glob("*.jpg"))[:6]]
    compared = 0
    for image in images:
        ours, theirs = detector.detect(image), ref.detect(image)
        assert [d.label for d in ours] == [d.label for d in theirs]
        for a, b in zip(ours, theirs, strict=True):
            assert a.bbox == pytest.approx(b.bbox, abs=1e-4) and a.confidence == pytest.approx(b.confidence, abs=1e-4)
            compared += 1
    assert compared >= 5


def test_detector_path_does_not_import_torch(detector_path: Path, bus_jpg: Path) -> None:
    """Loading the OpenVINO detector and detecting must not import torch or ultralytics (1.5-2.5 s at launch)."""
    import subprocess
    import sys

    code = ("import sys, cv2; from assist.config import HazardConfig; from assist.hazards.detector import YoloDetector; "
            f"d = YoloDetector({str(detector_path)!r}, HazardConfig()); "
            f"print(sorted({{x.label for x in d.detect(cv2.imread({str(bus_jpg)!r}))}}), "
            "'torch' in sys.modules, 'ultralytics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("False False") and "'bus'" in out.stdout, out.stdout


def test_agents_starting_together_on_a_cold_compile_cache_all_load(detector_path: Path, bus_jpg: Path,
                                                                   tmp_path: Path) -> None:
    """OpenVINO writes its compiled blob in place: four README commands started at once on a cold
    cache died with SIGBUS or "Exception from src/inference/src/cpp/core.cpp" while another wrote
    it. Each model's cache folder is now compiled privately and published with one rename, and a
    published folder is only read (a half-written blob left by a killed run is never used)."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    # What a run killed mid-compile leaves: a private folder with half a blob. It must not be read.
    stale = cache / "openvino" / "0123456789abcdef.tmp-killed"
    stale.mkdir(parents=True)
    (stale / "1.blob").write_bytes(b"\0" * 100)
    code = ("import sys, cv2; from assist.hazards.openvino_yolo import OpenVinoYolo; from pathlib import Path; "
            f"m = OpenVinoYolo(Path({str(detector_path)!r})); "
            f"boxes, conf, cls = m.predict(cv2.imread({str(bus_jpg)!r}), 0.25); print(sorted({{m.names[int(c)] for c in cls}}))")
    env = {**os.environ, "ASSIST_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parent.parent) for _ in range(4)]
    outs = [p.communicate(timeout=240) + (p.returncode,) for p in procs]
    for out, err, rc in outs:
        assert rc == 0 and "'bus'" in out, (rc, out, err[-2000:])
    published = [d for d in (cache / "openvino").iterdir() if (d / "complete").is_file()]
    assert len(published) == 1 and list(published[0].glob("*.blob")), list((cache / "openvino").iterdir())
    assert not [d for d in (cache / "openvino").iterdir() if ".tmp-" in d.name and d != stale]  # no leftovers
    blob = next(published[0].glob("*.blob"))
    before = (blob.stat().st_mtime_ns, blob.stat().st_size)
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240,
                           cwd=Path(__file__).resolve().parent.parent)
    assert again.returncode == 0 and "'bus'" in again.stdout, again.stderr[-2000:]
    assert (blob.stat().st_mtime_ns, blob.stat().st_size) == before  # read, not written again
