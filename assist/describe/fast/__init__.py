"""Fast greedy captioning for ViT-GPT2 models: our own decoding loops instead of ``generate``,
one file per backend behind one interface.

``build_fast_generator(model, cfg)`` returns a callable ``pixel_values -> token ids`` shaped like
``model.generate``'s output (decoder start token first, eos last when reached), or ``None`` when
the model or a setting is not supported (the caller then keeps plain transformers).

Precisions (``cfg.precision``, default "auto"):

- ``fp32``: same kernels and operand layouts as transformers, so greedy tokens are identical to
  ``model.generate(num_beams=1)`` with the same ``max_new_tokens``, ``no_repeat_ngram_size`` and
  ``repetition_penalty`` (the tests compare them token by token). Gains come only from skipping
  ``generate``'s per-token Python (about 1.2x on 2 cores).
- ``int8`` (CPU): dynamic int8 weights (per output channel) for every decoder projection, the
  output head (untied from the embedding) and the ViT encoder's linear layers. A decoding step
  reads ~138 MB instead of ~554 MB; ``bench/RESULTS.md`` has the measured speed and the token
  agreement with fp32.
- ``fp16`` (CUDA): half precision, static KV cache, encoder and each decoding step replayed as
  CUDA graphs (see :mod:`assist.describe.fast.cuda`).

- ``ort-int8`` (CPU, the default when onnxruntime is installed): ONNX Runtime graphs with int8 weights
  (:mod:`assist.describe.fast.onnx_runtime`), built once and cached on disk; ``ort-int4`` is the 4-bit decoder
  (faster, but its agreement with fp32 is not yet defensible: bench/RESULTS.md).

"auto" picks fp16 on CUDA (when ``cfg.device`` allows and CUDA is available), else ort-int8 (int8 without
onnxruntime) on CPU.

One file per backend: ``torch_greedy`` (the PyTorch loop, fp32/int8), ``decoder`` (the GPT-2 decoder
weights and step functions it runs), ``cuda`` (fp16, static cache, CUDA graphs), ``onnx_runtime``
(the cached ORT graphs) and ``preprocess`` (the image preprocessing the ORT path uses without
transformers). Every backend returns a :class:`CaptionGenerator`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from assist.core.device import pick_device

if TYPE_CHECKING:  # torch is imported only where a path needs it: the warm ORT path runs without it
    import torch
    from torch import nn

    from assist.describe.fast.ort_greedy import OrtGreedy
    from assist.describe.fast.torch_greedy import FastGenerator

log = logging.getLogger(__name__)


class CaptionGenerator(Protocol):
    """What every fast backend returns: ``pixel_values -> token ids``, shaped like ``model.generate``'s
    output (decoder start token first, eos last when reached)."""

    precision: str

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Greedy-decode one batch of preprocessed images."""
        ...


def decode_settings(cfg: object) -> dict[str, int | float]:
    """The greedy loop's settings from the CaptionConfig (every fast generator takes the same):
    ``max_new_tokens``, ``no_repeat_ngram_size`` (0 = off), ``repetition_penalty`` (1 = off)."""
    return {"max_new_tokens": int(cfg.max_new_tokens),  # type: ignore[attr-defined]
            "no_repeat_ngram_size": int(getattr(cfg, "no_repeat_ngram_size", 0) or 0),
            "repetition_penalty": float(getattr(cfg, "repetition_penalty", 1.0) or 1.0)}


def resolve_precision(cfg: object, precision: str | None = None) -> tuple[str, str]:
    """(precision, device) the config asks for: auto = fp16 on an available GPU, else ONNX Runtime int8
    on CPU (PyTorch int8 when onnxruntime is not installed)."""
    want = precision or getattr(cfg, "precision", "auto")
    device = getattr(cfg, "device", "auto")
    cuda = pick_device(device, "caption.device", warn=False) == "cuda"  # the captioner has warned already
    if want == "auto":
        if cuda:
            return "fp16", "cuda"
        from assist.describe.fast.onnx_runtime import ort_available

        return ("ort-int8" if ort_available() else "int8"), "cpu"
    if want == "fp16":
        return ("fp16", "cuda") if cuda else ("fp32", "cpu")
    return want, "cpu"


def generation_meta(model: nn.Module) -> dict[str, object]:
    """What the decoding loop needs from the model besides weights (stored with an ORT cache)."""
    from assist.describe.fast.torch_greedy import eos_ids_of, start_id_of

    gc = model.generation_config
    return {"start_id": start_id_of(model), "eos_ids": sorted(eos_ids_of(getattr(gc, "eos_token_id", None)))}


def ort_generator(folder: object, cfg: object, meta: dict[str, object], precision: str) -> FastGenerator:
    """A FastGenerator over a built ONNX Runtime cache folder (no PyTorch model needed)."""
    import numpy as np
    import torch

    from assist.describe.fast.onnx_runtime import OrtCaptionModel
    from assist.describe.fast.torch_greedy import FastGenerator

    threads = int(getattr(cfg, "threads", 0) or 0) or torch.get_num_threads()
    # Encoder and decoder both get the captioner's thread budget (caption.threads, else the caller's
    # torch threads: captioner.auto_threads leaves the detector a core, so 1 of 2 cores). A second
    # decoder thread makes the M=1 steps 1.55x faster on 2 idle cores (17.9 -> 11.5 ms per step), and
    # ORT's pool degrades gently when a core is taken: 1.4x slower with a busy process on the other core,
    # spinning workers or not, not the 4-8x collapse of torch's OpenMP decoding (bench/RESULTS.md, fourth pass).
    om = OrtCaptionModel(folder, encoder_threads=threads, decoder_threads=threads)  # type: ignore[arg-type]
    settings = decode_settings(cfg)
    max_new = int(settings["max_new_tokens"])

    def encode(pixel_values: torch.Tensor) -> dict[str, np.ndarray]:
        return om.encode(pixel_values.detach().to("cpu", torch.float32).numpy())

    def session(image_kv: dict[str, np.ndarray]) -> Callable[[int, int], torch.Tensor]:
        run = om.session(image_kv, max_new)
        return lambda token, pos: torch.from_numpy(run(int(token), pos))

    gen = FastGenerator(encode, None, start_id=int(meta["start_id"]),  # type: ignore[arg-type]
                        eos_ids=frozenset(int(e) for e in meta["eos_ids"]),  # type: ignore[attr-defined]
                        **settings, precision=precision, session=session)  # type: ignore[arg-type]
    gen.ort = om  # type: ignore[attr-defined]
    return gen


def _cached_ort_folder(source: str, cfg: object) -> tuple[object, dict, str] | None:
    """(cache folder, generation meta, precision) of a built ORT cache for ``source``, else None."""
    if getattr(cfg, "backend", "auto") == "transformers" or int(getattr(cfg, "num_beams", 1)) != 1:
        return None
    prec, device = resolve_precision(cfg)
    if not prec.startswith("ort-") or device != "cpu":
        return None
    from assist.describe.fast.onnx_runtime import ORT_PRECISIONS, cache_key, cache_ready, cache_root, read_meta

    key = cache_key(source, None, ORT_PRECISIONS[prec])
    folder = cache_root() / "ort-captioner" / key if key else None
    if folder is None or not cache_ready(folder):
        return None
    meta = read_meta(folder).get("generation") or {}
    if meta.get("start_id") is None:
        return None
    return folder, meta, prec


def cached_ort_generator(source: str, cfg: object) -> FastGenerator | None:
    """The ONNX Runtime generator for model folder ``source`` when its cache is already built, else None.

    Needs no PyTorch model: a run after the first loads only the quantized graphs. None when the
    config does not ask for an ORT path (backend transformers, beams, another precision).
    Takes and returns torch tensors; :func:`cached_ort_numpy` is the same without torch.
    """
    found = _cached_ort_folder(source, cfg)
    if found is None:
        return None
    folder, meta, prec = found
    gen = ort_generator(folder, cfg, meta, prec)
    log.info("fast captioner: %s on cpu from the cache %s", prec, folder)
    return gen


def cached_ort_numpy(source: str, cfg: object, threads: int) -> OrtGreedy | None:
    """:func:`cached_ort_generator` without torch: NumPy pixel values in, NumPy token ids out (the same
    tokens: the same ORT sessions and the same greedy rule). ``threads``: the captioner's thread budget."""
    found = _cached_ort_folder(source, cfg)
    if found is None:
        return None
    folder, meta, prec = found
    from assist.describe.fast.onnx_runtime import OrtCaptionModel
    from assist.describe.fast.ort_greedy import OrtGreedy

    om = OrtCaptionModel(folder, encoder_threads=threads, decoder_threads=threads)  # type: ignore[arg-type]
    gen = OrtGreedy(om, start_id=int(meta["start_id"]), eos_ids=frozenset(int(e) for e in meta["eos_ids"]),
                    **decode_settings(cfg), precision=prec)  # type: ignore[arg-type]
    log.info("fast captioner: %s on cpu from the cache %s (no torch)", prec, folder)
    return gen


def build_fast_generator(model: nn.Module, cfg: object, *, precision: str | None = None, source: str | None = None
                         ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A fast greedy captioner for a ViT+GPT-2 ``VisionEncoderDecoderModel``, or None.

    ``cfg`` is the CaptionConfig (``max_new_tokens``, ``num_beams``, ``repetition_penalty``,
    ``no_repeat_ngram_size``, ``device`` and optionally ``precision``); ``precision`` overrides
    it ("fp32" | "int8" | "fp16" | "ort-int8" | "ort-int4" | "auto"). Returns None when the model or a
    setting is not supported, or when building fails (logged), so the caller keeps plain ``generate``.
    The model itself is not modified: fp32 shares its tensors, int8/fp16 make copies, the ORT paths
    build (once, cached on disk; keyed by ``source``, the model folder, when given) their own graphs.
    """
    from assist.describe.fast.decoder import extract_decoder
    from assist.describe.fast.torch_greedy import (
        PRECISIONS,
        FastGenerator,
        encoder_fn,
        eos_ids_of,
        quantized_copy,
        start_id_of,
        unsupported_reason,
    )

    reason = unsupported_reason(model, cfg)
    if reason:
        log.info("fast captioner not used: %s", reason)
        return None
    prec, device = resolve_precision(cfg, precision)
    if prec not in PRECISIONS:
        log.info("fast captioner not used: unknown precision %r", prec)
        return None
    if device == "cpu" and any(p.device.type != "cpu" for p in model.parameters()):
        log.info("fast captioner not used: the model is on %s but the %s path runs on the CPU",
                 next(model.parameters()).device, prec)
        return None
    gc = model.generation_config
    common = dict(start_id=start_id_of(model), eos_ids=eos_ids_of(getattr(gc, "eos_token_id", None)),
                  **decode_settings(cfg))
    t0 = time.perf_counter()
    try:
        if prec.startswith("ort-"):
            from assist.describe.fast.onnx_runtime import ORT_PRECISIONS, ort_unsupported_reason, resolve_cache

            why = ort_unsupported_reason(model)
            if why:
                log.info("ONNX Runtime captioner not used (%s): PyTorch int8 instead", why)
                return build_fast_generator(model, cfg, precision="int8")
            folder = resolve_cache(model.eval(), source, ORT_PRECISIONS[prec], gen_meta=generation_meta(model))
            gen = ort_generator(folder, cfg, generation_meta(model), prec)
        elif device == "cuda":
            from assist.describe.fast.cuda import build_cuda_generator

            gen: FastGenerator = build_cuda_generator(model, **common)  # type: ignore[arg-type]
        else:
            model.eval()
            # int8: a quantized copy of the encoder (the model's own stays fp32 for the fallback)
            encoder = quantized_copy(model.encoder) if prec == "int8" else model.encoder
            weights = extract_decoder(model.decoder, "int8" if prec == "int8" else "fp32")
            # int8 decodes on one thread unless caption.threads asks for more; fp32 keeps the caller's
            # thread count, because a different BLAS split could round differently from generate.
            threads = int(getattr(cfg, "threads", 0) or 0)
            decode_threads = (threads or 1) if prec == "int8" else None
            gen = FastGenerator(encoder_fn(model, encoder), weights, precision=prec, decode_threads=decode_threads,
                                **common)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure here means "use plain transformers"
        log.warning("fast captioner (%s on %s) could not be built, using transformers: %s", prec, device, exc)
        return None
    log.info("fast captioner: %s on %s, built in %.1f s", prec, device, time.perf_counter() - t0)
    return gen
