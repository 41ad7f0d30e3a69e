"""YOLO OpenVINO exports run directly on OpenVINO: no ultralytics, no torch on the detector's path.

Why: ``from ultralytics import YOLO`` imports torch, 1.5-2.5 s and ~700 MB before the first frame
can be looked at (``python -X importtime``: torch 2.47 s of ultralytics' 2.74 s, cold). The agent's
default detector is an OpenVINO export, which needs only ``openvino`` (0.35 s) to run. This module
reproduces ultralytics' prediction for such an export step by step, so the detections are the same:

- pre-processing as ``LetterBox`` (centred, ``INTER_LINEAR``, padding 114, no upscaling limit), BGR ->
  RGB, 0..1, NCHW float32;
- exports with NMS in the graph (``metadata.yaml`` ``args.nms: true``, output [1, 300, 6] =
  x1, y1, x2, y2, confidence, class) are filtered at the confidence threshold as ultralytics'
  end-to-end branch does; raw exports (output [1, 4 + classes, anchors]) get class-aware NMS
  (IoU 0.7, at most 300 boxes, ultralytics' defaults) with OpenCV's ``NMSBoxes``;
- boxes are mapped back through the letterbox as ``scale_boxes`` does and clipped to the image.

Compiled models are cached by OpenVINO (``CACHE_DIR`` under ``$ASSIST_CACHE``): the int8 YOLO11n
compiles in 1.3-2.4 s the first time and loads in ~0.5 s after (measured). OpenVINO writes its
blob in place, so two agents starting together (or one killed mid-write) could leave the other
reading half a blob: seen as a SIGBUS or "Exception from src/inference/src/cpp/core.cpp" when
four README commands started at once on a cold cache. So each model (and OpenVINO version, CPU
and settings) gets its own cache folder, compiled into a private folder and published with one
rename; a published folder is only ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

PAD_VALUE = 114
NMS_IOU = 0.7
MAX_DET = 300


def export_files(path: Path) -> tuple[Path, Path] | None:
    """(model .xml, metadata.yaml) of an ultralytics OpenVINO export folder, or None when ``path`` is not one."""
    if not path.is_dir():
        return None
    xmls = sorted(path.glob("*.xml"))
    meta = path / "metadata.yaml"
    if len(xmls) != 1 or not meta.is_file() or not xmls[0].with_suffix(".bin").is_file():
        return None
    return xmls[0], meta


def available() -> bool:
    """True when the ``openvino`` runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _cache_root() -> Path:
    root = Path(os.environ.get("ASSIST_CACHE") or Path.home() / ".cache" / "assist") / "openvino"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(xml: Path, config: dict[str, Any], runtime: str, device: str) -> str:
    """What a compiled blob depends on: the model files (path, size, time), the settings,
    the OpenVINO version and the CPU (a blob from another CPU is recompiled, in place)."""
    parts = [str(xml.resolve()), runtime, device, repr(sorted(config.items()))]
    for f in (xml, xml.with_suffix(".bin")):
        st = f.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _compile_cached(core: Any, xml: Path, config: dict[str, Any], key: str) -> Any:
    """Compile ``xml``, loading it from its published cache folder when there is one, else
    compiling into a private folder and publishing it in one rename (module doc)."""
    root = _cache_root()
    folder = root / key
    if (folder / "complete").is_file():
        return core.compile_model(str(xml), "CPU", {**config, "CACHE_DIR": str(folder)})
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=root))
    try:
        compiled = core.compile_model(str(xml), "CPU", {**config, "CACHE_DIR": str(tmp)})
        (tmp / "complete").write_text("1\n")
        with contextlib.suppress(OSError):  # another process published it first: theirs is as good
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return compiled


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """ultralytics' ``LetterBox(size, auto=False)``: the padded image and (gain_x, gain_y, pad_x, pad_y)."""
    import cv2

    h0, w0 = image.shape[:2]
    r = min(size[0] / h0, size[1] / w0)
    new_w, new_h = max(round(w0 * r), 1), max(round(h0 * r), 1)
    dw, dh = (size[1] - new_w) / 2, (size[0] - new_h) / 2
    img = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (w0, h0) != (new_w, new_h) else image
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return img, (new_w / w0, new_h / h0, left, top)


class OpenVinoYolo:
    """One compiled OpenVINO YOLO export: ``predict(bgr, conf) -> (xyxy pixels [n, 4], conf [n], class [n])``."""

    def __init__(self, folder: Path, *, threads: int = 0) -> None:
        import openvino as ov
        import yaml

        files = export_files(folder)
        if files is None:
            raise ValueError(f"{folder}: not an OpenVINO export folder (one .xml + .bin and metadata.yaml)")
        xml, meta_path = files
        meta = yaml.safe_load(meta_path.read_text()) or {}
        self.names: dict[int, str] = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        imgsz = meta.get("imgsz") or [640, 640]
        self.size = (int(imgsz[0]), int(imgsz[1])) if isinstance(imgsz, list) else (int(imgsz), int(imgsz))
        self.end2end = bool((meta.get("args") or {}).get("nms"))
        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}  # as ultralytics compiles it
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        key = cache_key(xml, config, ov.get_version(), str(core.get_property("CPU", "FULL_DEVICE_NAME")))
        self.compiled = _compile_cached(core, xml, config, key)
        self.request = self.compiled.create_infer_request()

    def predict(self, image_bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x1, y1, x2, y2 in the image's pixels, clipped), confidences and class ids at ``conf`` or above."""
        img, (gx, gy, px, py) = letterbox(image_bgr, self.size)
        x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        out = np.asarray(self.request.infer({0: x})[self.compiled.output(0)])[0]
        if self.end2end:  # [300, 6]: NMS done in the graph
            keep = out[:, 4] > conf
            rows = out[keep][:MAX_DET]
            boxes, scores, cls = rows[:, :4].copy(), rows[:, 4], rows[:, 5].astype(int)
        else:
            boxes, scores, cls = self._nms(out, conf)
        h0, w0 = image_bgr.shape[:2]
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - px) / gx).clip(0, w0)
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - py) / gy).clip(0, h0)
        return boxes, scores.astype(float), cls

    @staticmethod
    def _nms(out: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw head [4 + nc, anchors] -> class-aware NMS (one best class per anchor, as ultralytics' default)."""
        import cv2

        pred = out.T
        scores_all = pred[:, 4:]
        cls = scores_all.argmax(1)
        scores = scores_all[np.arange(len(cls)), cls]
        keep = scores > conf
        xywh, scores, cls = pred[keep, :4], scores[keep], cls[keep]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        if not len(boxes):
            return boxes, scores, cls
        # class offsets make one NMS call class-aware (ultralytics does the same with max_wh)
        shifted = boxes + cls[:, None] * 7680.0
        idx = cv2.dnn.NMSBoxes([[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in shifted],
                               scores.tolist(), conf, NMS_IOU)
        idx = np.asarray(idx, dtype=int).reshape(-1)[:MAX_DET]
        return boxes[idx], scores[idx], cls[idx]
