"""The hazard detector: finding YOLO weights and running them on BGR frames.

Model resolution (../shared/DESIGN.md): ``ASSIST_DETECTOR`` -> ``hazards.model`` as an
existing path -> the project's ``models/`` folder (and ultralytics' own weights
folder, where earlier downloads land) -> an ultralytics download by name, only
when a known asset name is asked for and the network answers.

Offline, ultralytics' own download path fails fast only because it checks DNS
once at import; with DNS but no route (proxies, captive portals) ``requests``
would wait 30 s per try over four tries. We therefore probe a TCP connection
to github.com ourselves with a hard 3 s cap before allowing a download, and
otherwise report the model as missing with instructions (exit 4 in the CLI).

A reference ``http://host:port/name`` or ``grpc://host:port/name`` is a model
served by a Triton Inference Server (``make serve``, assist/serve/): ultralytics
loads it by URL (``YOLO(url, task="detect")``, reading class names and input
size from the model config's ``parameters.metadata``); we check the server
first so a wrong URL says what answered (assist/serve/client.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from assist.config import MODELS_DIR, HazardConfig, project_path
from assist.core.detection import Detection
from assist.core.device import pick_device
from assist.core.events import EventLog
from assist.hazards.errors import DetectorModelMissing
from assist.hazards.openvino_yolo import OpenVinoYolo, export_files
from assist.hazards.openvino_yolo import available as openvino_available

log = logging.getLogger(__name__)

ENV_VAR = "ASSIST_DETECTOR"
ONLINE_PROBE = ("github.com", 443)
ONLINE_TIMEOUT_S = 3.0


def _how_to_get(name: str) -> str:
    return (f"put YOLO weights at models/{name} (or an exported folder such as models/yolo11n_openvino_model), "
            f"set hazards.model in config.toml to a weights path, or set {ENV_VAR}=PATH; "
            f"with internet, ultralytics downloads known names such as yolo11n.pt")


def _download_names() -> frozenset[str]:
    """Weights names ultralytics knows how to download (its GitHub release assets)."""
    try:
        from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES
    except Exception:  # pragma: no cover - an ultralytics without the constant
        return frozenset()
    return frozenset(GITHUB_ASSETS_NAMES)


def is_online(timeout_s: float = ONLINE_TIMEOUT_S) -> bool:
    """Whether a download could work: honours YOLO_OFFLINE, then a TCP probe capped at ``timeout_s``.

    The probe runs in a daemon thread because name resolution can block longer
    than any socket timeout; we stop waiting after ``timeout_s`` whatever happens.
    """
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(ONLINE_PROBE, timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    th = threading.Thread(target=probe, name="detector-online-probe", daemon=True)
    th.start()
    th.join(timeout_s)
    return bool(result and result[0])


def _candidates_in(folder: Path, name: str) -> list[Path]:
    """models/<name>, then the usual export names of the same stem (OpenVINO, ONNX, engine, TFLite)."""
    stem = Path(name).stem if Path(name).suffix else name
    names = [name, f"{stem}.pt", f"{stem}_openvino_model", f"{stem}_int8_openvino_model", f"{stem}.onnx",
             f"{stem}.engine", f"{stem}_saved_model", f"{stem}_float32.tflite"]
    seen: list[Path] = []
    for n in names:
        p = folder / n
        if p not in seen:
            seen.append(p)
    return seen


def resolve_detector(cfg: HazardConfig, *, models_dir: Path | None = None,
                     online: bool | None = None) -> str | None:
    """Where to load the detector from, or None when no weights can be had.

    Order: $ASSIST_DETECTOR (must exist: a wrong explicit path is an error, not a
    reason to silently use something else) -> ``cfg.model`` if it is an existing
    path (relative to the working directory, then to the project) -> the
    ``models/`` folder -> ultralytics' weights folder -> the bare name for
    ultralytics to download, only if it is a known asset and we are online.
    ``models_dir`` and ``online`` exist for tests (None = the project's folder /
    probe the network).
    """
    from assist.serve import is_remote, parse_model_url

    env = os.environ.get(ENV_VAR, "").strip()
    for ref, where in ((env, ENV_VAR), ("" if env else cfg.model.strip(), "hazards.model")):
        if is_remote(ref):
            try:
                return str(parse_model_url(ref))
            except ValueError as exc:
                raise DetectorModelMissing(f"{where}: {exc}") from None
    if env:
        p = Path(env).expanduser()
        if p.exists():
            return str(p)
        raise DetectorModelMissing(f"{ENV_VAR}={env}: no such file or folder; point it at YOLO weights "
                                   f"or unset it to use hazards.model ({cfg.model})")
    model = cfg.model.strip()
    if not model:
        return None
    p = Path(model).expanduser()
    local = project_path(p)
    if local.exists():
        return str(local)
    name = p.name
    for cand in _candidates_in(models_dir or MODELS_DIR, name):
        if cand.exists():
            return str(cand)
    try:
        from ultralytics.utils import SETTINGS

        cached = Path(SETTINGS["weights_dir"]) / name
        if cached.exists():
            return str(cached)
    except Exception:  # pragma: no cover - settings unreadable: just skip the cache
        pass
    if p.parent == Path(".") and name in _download_names():
        if online if online is not None else is_online():
            log.info("detector %s not found locally; ultralytics will download it", name)
            return name
        log.warning("detector %s not found locally and the network is unreachable", name)
    return None


def require_detector(cfg: HazardConfig, **kwargs: object) -> str:
    """``resolve_detector`` that raises :class:`DetectorModelMissing` instead of returning None."""
    path = resolve_detector(cfg, **kwargs)  # type: ignore[arg-type]
    if path is None:
        raise DetectorModelMissing(f"detector weights {cfg.model!r} not found (offline or unknown name): "
                                   + _how_to_get(Path(cfg.model).name or "yolo11n.pt"))
    return path


def required_detector_path(cfg: HazardConfig, events: EventLog) -> str | None:
    """The detector weights for a run, by the resolution order; None when hazards
    are disabled. Missing: a ``model_missing`` status event, then
    :class:`DetectorModelMissing` (the command line exits 4)."""
    if not cfg.enabled:
        return None
    try:
        return require_detector(cfg)
    except DetectorModelMissing as exc:
        events.status("model_missing", text=str(exc), model="detector")
        raise


def load_error(path: str | None, exc: BaseException) -> DetectorModelMissing:
    """The error for detector weights that were found but do not load."""
    if isinstance(exc, DetectorModelMissing):  # its message already names the file and the fix
        return exc
    return DetectorModelMissing(f"detector {path}: cannot load ({exc}); check the file or set {ENV_VAR} "
                                "to a working YOLO model")


def _raise_if_runtime_missing(model: str, exc: BaseException) -> None:
    """DetectorModelMissing naming the package and extra when ``exc`` is a missing format runtime."""
    from assist.hazards.runtimes import missing_runtime_message

    message = missing_runtime_message(model, exc)
    if message is not None:
        raise DetectorModelMissing(message) from None


class YoloDetector:
    """An ultralytics YOLO model behind ``detect(image_bgr) -> list[Detection]``.

    One instance per owning thread (ultralytics predictors are not thread safe,
    ultralytics issues #6174, #2273); a lock makes accidental sharing merely
    slow instead of corrupt. Loads any format ultralytics loads (.pt, OpenVINO
    folder, ONNX, TFLite, TensorRT engine) with ``task="detect"`` (exports do
    not always record their task), and runs one warm-up inference on load so the
    first real frame is not slowed by graph compilation.
    """

    def __init__(self, path: str, cfg: HazardConfig, *, stop: threading.Event | None = None) -> None:
        from assist.serve import is_remote

        self.path = str(path)
        self.remote = is_remote(self.path)
        self.cfg = cfg
        self.imgsz = cfg.imgsz_px
        self.last_latency_ms: float | None = None
        self._lock = threading.Lock()
        p = Path(self.path)
        if self.remote:
            self._connect(stop)
        elif not p.exists() and not (p.parent == Path(".") and p.name in _download_names()):
            raise DetectorModelMissing(f"{self.path}: no such detector weights; " + _how_to_get(p.name))
        self._ov = self._load_openvino(p)
        if self._ov is not None:
            # The OpenVINO export runs on OpenVINO alone: no ultralytics, no torch on the detector's path
            # (importing them took 1.5-2.5 s of the first warning's 2.1-2.4 s after launch; bench/RESULTS.md).
            self.device, self.half, self.model = "cpu", False, None
            self.names = dict(self._ov.names)
            t0 = time.perf_counter()
            self._ov.predict(np.zeros((self.imgsz, self.imgsz, 3), dtype=np.uint8), cfg.confidence)
            log.info("detector %s loaded on OpenVINO (imgsz %d), warm-up %.0f ms", self.path, self._ov.size[0],
                     (time.perf_counter() - t0) * 1000)
            if self._ov.size[0] != self.imgsz:
                log.warning("detector %s runs at its export size %d, not hazards.imgsz_px=%d (re-export it to "
                            "change)", self.path, self._ov.size[0], self.imgsz)
                self.imgsz = self._ov.size[0]
            return
        # ultralytics names the first GPU "cuda:0"
        self.device = "cuda:0" if pick_device(cfg.device, "hazards.device") == "cuda" else "cpu"
        try:
            from ultralytics import YOLO

            self.model = YOLO(self.path, task="detect")
        except Exception as exc:  # corrupt file, wrong format, failed download, missing runtime
            _raise_if_runtime_missing(self.path, exc)
            raise DetectorModelMissing(f"{self.path}: cannot load detector weights "
                                       f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}); "
                                       + _how_to_get(p.name)) from None
        # Half precision only where it is supported and faster: PyTorch weights on CUDA.
        self.half = self.device.startswith("cuda") and p.suffix == ".pt"
        t0 = time.perf_counter()
        try:
            # Exports load their runtime here (``names`` builds the backend), not in YOLO();
            # a served model is asked for its config here.
            self.names: dict[int, str] = dict(self.model.names)
            self._predict(np.zeros((self.imgsz, self.imgsz, 3), dtype=np.uint8))
        except ModuleNotFoundError as exc:
            _raise_if_runtime_missing(self.path, exc)
            raise
        except Exception as exc:
            if not self.remote:
                raise
            from assist.serve.client import describe_failure

            raise DetectorModelMissing(describe_failure(self.path, exc)) from None
        log.info("detector %s loaded on %s (imgsz %d), warm-up %.0f ms", self.path, self.device, self.imgsz,
                 (time.perf_counter() - t0) * 1000)
        self._note_static_size()

    def _load_openvino(self, p: Path) -> OpenVinoYolo | None:
        """The direct OpenVINO runner for an OpenVINO export folder on the CPU, else None (ultralytics then)."""
        if self.cfg.device == "cuda" or export_files(p) is None or not openvino_available():
            return None
        try:
            # One inference thread on small machines, where the captioner leaves the detector one core
            # (describe.captioner.auto_threads): a second thread waits on the captioner's core at every layer.
            return OpenVinoYolo(p, threads=1 if (os.cpu_count() or 1) <= 4 else 0)
        except Exception as exc:  # corrupt export, unreadable metadata: the same error as ultralytics would give
            raise DetectorModelMissing(f"{self.path}: cannot load detector weights "
                                       f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}); "
                                       + _how_to_get(p.name)) from None

    def _connect(self, stop: threading.Event | None) -> None:
        """Check the served model (waiting for a server that answered before); DetectorModelMissing if unusable."""
        from assist.serve.client import RemoteModelUnavailable, connect

        try:
            config = connect(self.path, stop)
        except RemoteModelUnavailable as exc:
            raise DetectorModelMissing(str(exc)) from None
        if "metadata" not in (config.get("parameters") or {}):
            raise DetectorModelMissing(f"{self.path}: the served model has no parameters.metadata in its config "
                                       "(class names, input size); serve it with make serve or export the model "
                                       "repository with python -m assist.serve.export")

    def _note_static_size(self) -> None:
        """Static exports (OpenVINO/ONNX/engine without dynamic=True) run at their export size, whatever we ask."""
        used = getattr(getattr(self.model, "predictor", None), "imgsz", None)
        if not used:
            return
        fixed = int(max(used)) if isinstance(used, (list, tuple)) else int(used)
        if fixed != self.imgsz:
            log.warning("detector %s runs at its export size %d, not hazards.imgsz_px=%d (re-export it to change)",
                        self.path, fixed, self.imgsz)
            self.imgsz = fixed

    def _predict(self, image: np.ndarray):  # noqa: ANN202 - ultralytics Results
        with self._lock:
            # ultralytics >= 8.4 spells half precision quantize=16 (the old half= flag warns).
            extra = {"quantize": 16} if self.half else {}
            return self.model.predict(image, imgsz=self.imgsz, conf=self.cfg.confidence, device=self.device,
                                      verbose=False, **extra)[0]

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Objects in one BGR frame at ``hazards.confidence`` or above, boxes normalised to 0..1,
        most confident first."""
        if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.size == 0:
            raise ValueError("detect() needs an HxWx3 BGR image")
        t0 = time.perf_counter()
        if self._ov is not None:
            with self._lock:
                xyxy, conf, cls = self._ov.predict(image_bgr, self.cfg.confidence)
            self.last_latency_ms = (time.perf_counter() - t0) * 1000.0
            h, w = image_bgr.shape[:2]
            return self._detections(xyxy / np.array([w, h, w, h], dtype=float), conf, cls)
        try:
            res = self._predict(image_bgr)
        except Exception as exc:
            if not self.remote:
                raise
            from assist.serve.client import RemoteModelUnavailable, describe_failure

            # Fail fast with one line: the worker says "Hazard detection unavailable" and reconnects.
            raise RemoteModelUnavailable(describe_failure(self.path, exc)) from None
        self.last_latency_ms = (time.perf_counter() - t0) * 1000.0
        boxes = res.boxes
        if boxes is None or len(boxes) == 0:
            return []
        return self._detections(boxes.xyxyn.cpu().numpy().astype(float), boxes.conf.cpu().numpy().astype(float),
                                boxes.cls.cpu().numpy().astype(int))

    def _detections(self, xyxyn: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> list[Detection]:
        """Detection records from normalised boxes, most confident first (degenerate boxes dropped)."""
        out = []
        for (x1, y1, x2, y2), c, k in zip(xyxyn, conf, cls, strict=True):
            if c < self.cfg.confidence:
                continue
            box = tuple(min(max(float(v), 0.0), 1.0) for v in (x1, y1, x2, y2))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            out.append(Detection(self.names.get(int(k), str(int(k))), float(c), box, int(k)))  # type: ignore[arg-type]
        out.sort(key=lambda d: -d.confidence)
        return out
