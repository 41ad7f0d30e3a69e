"""The captioner: find the model, load it, generate a caption (the caption
engine the caption thread owns is in :mod:`assist.describe.engine`).

Model resolution (../shared/DESIGN.md, "Models"): ``ASSIST_CAPTIONER`` -> ``caption.model``
(a local folder, or a hub id already in the Hugging Face cache) -> the project's
``models/<last part of the id>`` -> download by hub id. The download is skipped
at once when ``HF_HUB_OFFLINE`` is set and otherwise fails fast offline, so a
machine without internet starts in seconds in the "descriptions from
detections" mode instead of hanging.

Loading: a ``vision-encoder-decoder`` folder (the default
``nlpconnect/vit-gpt2-image-captioning``) is loaded as
``VisionEncoderDecoderModel`` + image processor + tokenizer; any other model
type goes through ``AutoModelForImageTextToText`` + ``AutoProcessor`` (BLIP,
GIT, ...). One model per owning thread: a ``CaptionEngine`` is created
and used by the caption thread only (transformers models are not thread-safe
under concurrent ``generate`` calls).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assist.config import MODELS_DIR, CaptionConfig, project_path
from assist.core.device import pick_device
from assist.describe.errors import CaptionModelMissing

log = logging.getLogger(__name__)

ENV_VAR = "ASSIST_CAPTIONER"
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# ------------------------------------------------------------------ resolution


def model_folder_name(model: str) -> str:
    """The folder name under models/ for a hub id or path: its last part."""
    return model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or model


def how_to_get(model: str) -> str:
    """One line telling a user how to make the captioner weights available."""
    name = model_folder_name(model)
    hub_id = model if _looks_like_hub_id(model) else "nlpconnect/vit-gpt2-image-captioning"
    return (f"with internet the weights download automatically on first run; offline, download them on another "
            f"machine (hf download {hub_id} --local-dir models/{model_folder_name(hub_id)}) and copy the folder "
            f"to models/{name}, or set {ENV_VAR}=/path/to/folder")


def _looks_like_hub_id(s: str) -> bool:
    return bool(_HUB_ID_RE.match(s)) and not s.startswith((".", "/")) and "\\" not in s


def _model_dir(p: Path) -> Path | None:
    """``p`` when it is a folder holding a transformers model (config.json)."""
    try:
        return p if (p / "config.json").is_file() else None
    except OSError:
        return None


def _cached_snapshot(repo_id: str) -> str | None:
    """The local snapshot folder of a hub id already in the HF cache, else None (never touches the network)."""
    if not _looks_like_hub_id(repo_id) or "/" not in repo_id:
        return None
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (LocalEntryNotFoundError) or a broken cache: both mean "no"
        return None
    return path if isinstance(path, str) and _model_dir(Path(path)) else None


def _offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set now, or when huggingface_hub was imported."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def _download(repo_id: str, timeout_s: float = 10.0) -> str | None:
    """Download a hub model into the HF cache; None when offline or it fails (never raises)."""
    if not _looks_like_hub_id(repo_id) or "/" not in repo_id or _offline():
        return None
    try:
        from huggingface_hub import snapshot_download

        log.info("downloading captioner %s from the Hugging Face hub ...", repo_id)
        # Only what transformers needs: the PyTorch/safetensors weights, not TF/Flax copies.
        path = snapshot_download(repo_id, etag_timeout=timeout_s,
                                 allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt", "*.model"])
    except Exception as exc:  # noqa: BLE001 - no network, unknown repo, disk full: all mean "not available"
        log.info("captioner download of %s failed: %s", repo_id, str(exc).splitlines()[0] if str(exc) else exc)
        return None
    return path if _model_dir(Path(path)) else None


def resolve_captioner(cfg: CaptionConfig, *, models_dir: Path | None = None, download: bool = True) -> str | None:
    """Find the captioner: ASSIST_CAPTIONER -> caption.model -> models/<name> -> download.

    Each candidate may be a local folder or a hub id (found in the HF cache
    first). Returns a local folder path, or None when nothing is found.
    """
    models_dir = MODELS_DIR if models_dir is None else models_dir
    candidates: list[str] = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        candidates.append(env)
    if cfg.model.strip():
        candidates.append(cfg.model.strip())
    from assist.serve import is_remote

    if candidates and is_remote(candidates[0]):
        return candidates[0]  # a served captioner (assist/describe/remote.py)
    for cand in candidates:
        p = project_path(cand)  # relative paths in config.toml: the working directory, then the project
        if _model_dir(p):
            return str(p)
        if p.is_dir():
            log.warning("captioner folder %s has no config.json: not a transformers model", p)
        cached = _cached_snapshot(cand)
        if cached:
            return cached
    for cand in candidates:
        local = _model_dir(models_dir / model_folder_name(cand))
        if local:
            return str(local)
    if env and not _looks_like_hub_id(env):
        log.warning("%s=%s: no such model folder", ENV_VAR, env)
    if download:
        for cand in candidates:
            got = _download(cand)
            if got:
                return got
    return None


# ------------------------------------------------------------------ loading and generation


def auto_threads(cores: int | None = None) -> int:
    """Threads for the captioner when caption.threads = 0: leave one core for the
    detector on small machines (its warnings must never wait for a caption),
    and two on bigger ones (capture, speech and the event log also need time)."""
    cores = cores or os.cpu_count() or 1
    if cores <= 4:
        return max(1, cores - 1)
    return cores - 2


def _to_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """BGR/BGRA/gray uint8 (OpenCV layout) -> contiguous RGB uint8."""
    if image_bgr is None or not isinstance(image_bgr, np.ndarray) or image_bgr.size == 0:
        raise ValueError("caption input must be a non-empty image array")
    img = image_bgr
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"caption input must be HxW, HxWx3 or HxWx4 (got shape {img.shape})")
    return np.ascontiguousarray(img[:, :, ::-1])


class Captioner:
    """One loaded image-to-text model with its processor and generation settings.

    ``caption(image_bgr)`` returns the raw decoded text. Not thread-safe: use
    it from one thread.
    """

    def __init__(self, path: str, cfg: CaptionConfig) -> None:
        self.path = path
        self.cfg = cfg
        self.device = pick_device(cfg.device, "caption.device")  # without torch when there is no CUDA driver
        self.threads = (cfg.threads or auto_threads()) if self.device == "cpu" else 0
        self._model: Any = None
        self._fast: Callable[[Any], Any] | None = None
        self._light = False  # the torch-free warm path: NumPy in and out, no torch imported
        self.backend = "transformers"
        self.dtype: Any = "float32"
        try:
            # A built ONNX Runtime cache (assist.describe.fast.onnx_runtime) needs no PyTorch model, and
            # not even torch: the warm path (_load_light) runs on NumPy + ORT + tokenizers (-700 MB
            # resident, bench/RESULTS.md sixth pass); the fp32 model (1.2 GB) and torch are loaded only if
            # the fast path ever fails.
            if not (self.device == "cpu" and self._load_light(path)):
                self._init_torch()
                self._load(path)
        except CaptionModelMissing:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader error means "this folder is not usable"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CaptionModelMissing(f"captioner {path}: cannot load ({first}); {how_to_get(cfg.model)}") from exc
        if self._fast is None:
            self.model.eval()
            self._setup_backend()

    def _init_torch(self) -> None:
        """Import torch and set the captioner's dtype and CPU threads (every path but the warm one)."""
        import torch

        # fp16 halves GPU memory and time with no visible caption change; on
        # the CPU fp16 kernels are slow or missing, so the CPU stays fp32.
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        if self.device == "cpu":
            # torch's intra-op pool is per process: this also bounds any other
            # torch work here. The detector (OpenVINO/ONNX) has its own pool.
            torch.set_num_threads(self.threads)
            log.info("captioner on CPU with %d threads", self.threads)

    @property
    def model(self) -> Any:
        """The transformers model (loaded on first use when the fast path started without it)."""
        if self._model is None:
            if isinstance(self.dtype, str):  # started on the torch-free path
                self._init_torch()
            self._load(self.path)
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    def _load_light(self, path: str) -> bool:
        """Start from a built ONNX Runtime cache: tokenizer + preprocessing only. False when none applies."""
        import json

        try:
            conf = json.loads((Path(path) / "config.json").read_text())
        except (OSError, ValueError):
            return False
        if conf.get("model_type") != "vision-encoder-decoder" or self.cfg.backend == "transformers":
            return False
        try:
            from assist.describe.fast import cached_ort_numpy
            from assist.describe.fast.preprocess import ViTPreprocessor

            fast: Any = cached_ort_numpy(path, self.cfg, self.threads)
            if fast is None:
                # First run: build the graphs from the saved weights in child processes (peak < 1.5 GB, where
                # loading the fp32 model to build them took 3.5 GB), then start from them like any later run.
                from assist.describe.fast.onnx_build import build_for_captioner

                if build_for_captioner(path, self.cfg):
                    fast = cached_ort_numpy(path, self.cfg, self.threads)
            if fast is None:
                return False
            image_processor = ViTPreprocessor.from_folder(path)
            try:
                from assist.describe.fast.ort_greedy import LightTokenizer

                tokenizer: Any = LightTokenizer(path)
            except (OSError, ValueError) as exc:  # no tokenizer.json, not BPE: transformers' (imports torch)
                log.info("tokenizer without transformers not possible (%s): using AutoTokenizer", exc)
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception:  # noqa: BLE001 - any problem here just means "load the full model"
            log.info("cached fast captioner unusable; loading the full model", exc_info=True)
            return False
        self.model_type = "vision-encoder-decoder"
        self.image_processor, self.tokenizer, self.processor = image_processor, tokenizer, None
        self._fast, self.backend, self._light = fast, "fast", True
        return True

    def _load(self, path: str) -> None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
        self.model_type = getattr(config, "model_type", "")
        if self.model_type == "vision-encoder-decoder":
            from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

            model = VisionEncoderDecoderModel.from_pretrained(path)
            self.image_processor = AutoImageProcessor.from_pretrained(path)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.processor = None
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            model = AutoModelForImageTextToText.from_pretrained(path)
            self.processor = AutoProcessor.from_pretrained(path)
            self.image_processor = getattr(self.processor, "image_processor", None)
            self.tokenizer = getattr(self.processor, "tokenizer", None)
        self.model = model.to(self.device, dtype=self.dtype).eval()

    def _setup_backend(self) -> None:
        """Use the fast greedy generator when it applies (backend auto/fast, greedy)."""
        cfg = self.cfg
        if cfg.backend == "transformers":
            return
        if cfg.num_beams != 1:
            if cfg.backend == "fast":
                log.warning("caption.backend = fast is greedy only; num_beams = %d uses transformers generate",
                            cfg.num_beams)
            return
        fast = None
        try:
            from assist.describe.fast import build_fast_generator
        except ImportError:
            build_fast_generator = None  # noqa: N806 - optional module
        if build_fast_generator is not None:
            try:
                fast = build_fast_generator(self.model, cfg, source=self.path)
            except Exception:  # noqa: BLE001 - an optional speed-up must never stop captions
                log.warning("fast caption path failed to build; using transformers generate", exc_info=True)
                fast = None
        if fast is None:
            if cfg.backend == "fast":
                log.warning("caption.backend = fast but no fast path applies to this model; using transformers "
                            "generate")
            return
        self._fast = fast
        self.backend = "fast"
        if getattr(fast, "ort", None) is not None and self.device == "cpu":
            # The ORT graphs hold their own weights: drop the fp32 model (about 1.2 GB) now; it is
            # reloaded from the folder only if the fast path fails and generate must take over.
            import gc

            self._model = None
            gc.collect()

    def generation_kwargs(self) -> dict[str, Any]:
        """model.generate keyword arguments from [caption]."""
        cfg = self.cfg
        kw: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "num_beams": cfg.num_beams, "do_sample": False}
        if cfg.num_beams > 1:
            kw["early_stopping"] = True
        if cfg.repetition_penalty != 1.0:
            kw["repetition_penalty"] = cfg.repetition_penalty
        if cfg.no_repeat_ngram_size:
            kw["no_repeat_ngram_size"] = cfg.no_repeat_ngram_size
        return kw

    def preprocess(self, images_bgr: Sequence[np.ndarray]) -> dict[str, Any]:
        """Model inputs (at least pixel_values) for a batch of BGR images, on the model's device."""
        rgb = [_to_rgb(im) for im in images_bgr]
        if self._light:
            return {"pixel_values": self.image_processor(images=rgb, return_tensors="np").pixel_values}
        if self.processor is not None:
            inputs = dict(self.processor(images=rgb, return_tensors="pt"))
        else:
            inputs = {"pixel_values": self.image_processor(images=rgb, return_tensors="pt").pixel_values}
        out: dict[str, Any] = {}
        for k, v in inputs.items():
            if hasattr(v, "to"):
                v = v.to(self.device, dtype=self.dtype) if v.is_floating_point() else v.to(self.device)
            out[k] = v
        return out

    def decode(self, ids: Any) -> list[str]:
        """Token ids -> text, special tokens removed."""
        dec = self.tokenizer if self.tokenizer is not None else self.processor
        return [t.strip() for t in dec.batch_decode(ids, skip_special_tokens=True)]

    def generate_ids(self, inputs: dict[str, Any]) -> Any:
        """Generated token ids for preprocessed inputs (fast path when available)."""
        if self._light:
            try:
                return self._fast(inputs["pixel_values"])  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - fall back for good: the fast path is an optimisation
                log.warning("fast caption path failed; switching to transformers generate", exc_info=True)
                self._light, self._fast, self.backend = False, None, "transformers"
                import torch

                pv = torch.from_numpy(inputs["pixel_values"])
                model = self.model  # loads torch, the model and its tokenizer (replaces the light one)
                return model.generate(pixel_values=pv.to(self.device, dtype=self.dtype), **self.generation_kwargs())
        import torch

        with torch.inference_mode():
            if self._fast is not None:
                try:
                    return self._fast(inputs["pixel_values"])
                except Exception:  # noqa: BLE001 - fall back for good: the fast path is an optimisation
                    log.warning("fast caption path failed; switching to transformers generate", exc_info=True)
                    self._fast = None
                    self.backend = "transformers"
            return self.model.generate(**inputs, **self.generation_kwargs())

    def caption_batch(self, images_bgr: Sequence[np.ndarray]) -> list[str]:
        """Raw captions for a batch of BGR images."""
        if not images_bgr:
            return []
        if self._fast is not None and len(images_bgr) > 1:
            # The fast path decodes one image at a time (no padding logic); for
            # batches (evaluation) it is still faster than batched generate on CPU.
            return [self.caption(img) for img in images_bgr]
        return self.decode(self.generate_ids(self.preprocess(images_bgr)))

    def caption(self, image_bgr: np.ndarray) -> str:
        """The raw caption of one BGR image."""
        return self.caption_batch([image_bgr])[0]


def load_captioner(cfg: CaptionConfig, path: str | None = None) -> Captioner:
    """Resolve (unless ``path`` is given) and load the captioner.

    Raises CaptionModelMissing with a one-line message that says how to get the
    weights when the model is found nowhere or cannot be loaded.
    """
    path = path or resolve_captioner(cfg)
    if path is None:
        where = f"{ENV_VAR}, caption.model, models/{model_folder_name(cfg.model)}, the Hugging Face cache"
        reason = "offline (HF_HUB_OFFLINE)" if _offline() else "download failed or no internet"
        raise CaptionModelMissing(f"captioner {cfg.model!r} not found (looked in {where}; {reason}); "
                                  f"{how_to_get(cfg.model)}")
    from assist.serve import is_remote

    if is_remote(path):
        from assist.describe.remote import RemoteCaptioner
        from assist.serve.client import RemoteModelUnavailable

        try:
            return RemoteCaptioner(path, cfg)  # type: ignore[return-value] - the same interface
        except RemoteModelUnavailable as exc:
            raise CaptionModelMissing(str(exc)) from None
    return Captioner(path, cfg)
