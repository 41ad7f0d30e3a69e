"""Fast greedy captioning for ViT-GPT2 models: our own decoding loop instead of ``generate``.

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
  CUDA graphs (see :mod:`assist.fast_caption_cuda`).

- ``ort-int8`` (CPU, the default when onnxruntime is installed): ONNX Runtime graphs with int8 weights
  (:mod:`assist.fast_caption_onnx`), built once and cached on disk; ``ort-int4`` is the 4-bit decoder
  (faster, but its agreement with fp32 is not yet defensible: bench/RESULTS.md).

"auto" picks fp16 on CUDA (when ``cfg.device`` allows and CUDA is available), else ort-int8 (int8 without
onnxruntime) on CPU.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from assist.fast_caption_decoder import DecoderWeights, cross_kv, extract_decoder, quantize_linear_modules, step

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "int8", "fp16", "ort-int8", "ort-int4")

# generation_config fields that change greedy decoding and that this loop does not implement:
# when any is set, the fast path declines (returns None) rather than silently decoding differently.
_UNSUPPORTED_GENERATION = {
    "bad_words_ids": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "suppress_tokens": None, "begin_suppress_tokens": None, "sequence_bias": None,
    "min_new_tokens": None, "encoder_no_repeat_ngram_size": 0, "encoder_repetition_penalty": 1.0,
    "exponential_decay_length_penalty": None, "renormalize_logits": False, "constraints": None,
    "force_words_ids": None, "guidance_scale": None, "watermarking_config": None,
}


def banned_ngram_tokens(ids: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in ``ids`` (transformers' NoRepeatNGram rule).

    Every earlier window whose first n-1 tokens equal the last n-1 tokens bans its last token.
    """
    cur = len(ids)
    if n <= 0 or cur < n:
        return []
    prefix = list(ids[cur - n + 1:])
    return [ids[i + n - 1] for i in range(cur - n + 1) if list(ids[i:i + n - 1]) == prefix]


def process_logits(logits: torch.Tensor, ids: Sequence[int], *, repetition_penalty: float,
                   no_repeat_ngram_size: int) -> torch.Tensor:
    """Apply repetition penalty then the n-gram ban to fp32 logits [vocab], in place, as generate does."""
    if repetition_penalty != 1.0:
        idx = torch.tensor(sorted(set(ids)), device=logits.device)
        idx = idx[idx < logits.shape[0]]
        s = logits.index_select(0, idx)
        logits.index_copy_(0, idx, torch.where(s < 0, s * repetition_penalty, s / repetition_penalty))
    banned = banned_ngram_tokens(ids, no_repeat_ngram_size)
    if banned:
        logits[torch.tensor(banned, device=logits.device)] = -float("inf")
    return logits


def _first_id(value: object) -> int | None:
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)  # type: ignore[call-overload]


def _eos_ids(value: object) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple)):
        return frozenset(int(v) for v in value)
    return frozenset({int(value)})  # type: ignore[call-overload]


def unsupported_reason(model: nn.Module, cfg: object) -> str | None:
    """Why the fast path cannot reproduce ``generate`` for this model and config, or None."""
    if int(getattr(cfg, "num_beams", 1)) != 1:
        return "num_beams > 1 (the fast path is greedy)"
    mcfg = getattr(model, "config", None)
    enc_type = getattr(getattr(mcfg, "encoder", None), "model_type", None)
    dec_type = getattr(getattr(mcfg, "decoder", None), "model_type", None)
    if enc_type != "vit" or dec_type != "gpt2":
        return f"model is {enc_type}+{dec_type}, the fast path knows vit+gpt2"
    dec_cfg = mcfg.decoder
    if not getattr(dec_cfg, "add_cross_attention", False):
        return "decoder has no cross-attention"
    if getattr(dec_cfg, "scale_attn_by_inverse_layer_idx", False) or getattr(dec_cfg, "reorder_and_upcast_attn", False):
        return "GPT-2 attention variants (scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn) not implemented"
    gc = getattr(model, "generation_config", None)
    for name, neutral in _UNSUPPORTED_GENERATION.items():
        value = getattr(gc, name, neutral)
        if value is not None and value != neutral:
            return f"generation_config.{name}={value!r} is not implemented by the fast path"
    if _start_id(model) is None:
        return "no decoder_start_token_id"
    return None


def _start_id(model: nn.Module) -> int | None:
    gc = getattr(model, "generation_config", None)
    for value in (getattr(gc, "decoder_start_token_id", None), getattr(model.config, "decoder_start_token_id", None),
                  getattr(gc, "bos_token_id", None)):
        if value is not None:
            return _first_id(value)
    return None


class FastGenerator:
    """Greedy captioning: encoder once, then one decoder step per token with a KV cache."""

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], weights: DecoderWeights | None, *,
                 start_id: int, eos_ids: frozenset[int], max_new_tokens: int, no_repeat_ngram_size: int,
                 repetition_penalty: float, precision: str, device: str = "cpu", decode_threads: int | None = None,
                 session: Callable[[torch.Tensor], Callable[[int, int], torch.Tensor]] | None = None) -> None:
        self.encode = encode
        self.weights = weights
        self.start_id = start_id
        self.eos_ids = eos_ids
        self.max_new_tokens = max_new_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.repetition_penalty = repetition_penalty
        self.precision = precision
        self.device = device
        self.decode_threads = decode_threads
        self._session = session or self._cpu_session

    def _cpu_session(self, enc: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
        w = self.weights
        assert w is not None
        xkv = cross_kv(w, enc)
        cache: list[list[torch.Tensor]] = [[] for _ in w.layers]
        return lambda token, pos: step(w, token, pos, cache, xkv)  # type: ignore[arg-type]

    def decode(self, enc: torch.Tensor, run: Callable[[int, int], torch.Tensor] | None = None) -> list[int]:
        """Greedy token ids (start token first) for encoder states [1, n, hidden].

        ``run`` is a session already made for ``enc`` (its image keys/values computed), if any.
        """
        run = run or self._session(enc)
        ids = [self.start_id]
        for pos in range(self.max_new_tokens):
            logits = process_logits(run(ids[-1], pos), ids, repetition_penalty=self.repetition_penalty,
                                    no_repeat_ngram_size=self.no_repeat_ngram_size)
            token = int(torch.argmax(logits))
            ids.append(token)
            if token in self.eos_ids:
                break
        return ids

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Token ids [1, n] (CPU, long) for one image's pixel values [1, 3, H, W]."""
        if pixel_values.dim() != 4 or pixel_values.shape[0] != 1:
            raise ValueError(f"fast captioner takes one image [1, 3, H, W], got {tuple(pixel_values.shape)}")
        with torch.inference_mode():
            enc = self.encode(pixel_values)
            run = self._session(enc)  # image keys/values: one batched matmul, on the caller's threads
            before = torch.get_num_threads()
            if self.decode_threads and self.decode_threads != before:
                # Decoding is ~70 small ops per token: with 2 OpenMP threads on a 2-core machine that is
                # also running the detector, every op waits for a descheduled thread (measured 4-8x
                # slower under load, bench/RESULTS.md). One thread keeps it memory-bound and leaves a core.
                torch.set_num_threads(self.decode_threads)
            try:
                ids = self.decode(enc, run)
            finally:
                if torch.get_num_threads() != before:
                    torch.set_num_threads(before)
        return torch.tensor([ids], dtype=torch.long)


def _encoder_fn(model: nn.Module, encoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder states the decoder attends to, as VisionEncoderDecoderModel computes them."""
    proj = None
    if (model.config.encoder.hidden_size != model.config.decoder.hidden_size
            and getattr(model.config.decoder, "cross_attention_hidden_size", None) is None):
        proj = model.enc_to_dec_proj

    def encode(pixel_values: torch.Tensor) -> torch.Tensor:
        states = encoder(pixel_values=pixel_values).last_hidden_state
        return proj(states) if proj is not None else states

    return encode


def quantized_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ``nn.Linear`` layers are dynamic int8; every other tensor is shared.

    A plain deepcopy would duplicate ~340 MB of fp32 encoder weights just to throw them away, and
    that transient is what sets a process's peak memory.
    """
    shared = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return quantize_linear_modules(copy.deepcopy(module, memo=shared).eval())


def resolve_precision(cfg: object, precision: str | None = None) -> tuple[str, str]:
    """(precision, device) the config asks for: auto = fp16 on an available GPU, else ONNX Runtime int8
    on CPU (PyTorch int8 when onnxruntime is not installed)."""
    want = precision or getattr(cfg, "precision", "auto")
    device = getattr(cfg, "device", "auto")
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if want == "auto":
        if cuda:
            return "fp16", "cuda"
        from assist.fast_caption_onnx import ort_available

        return ("ort-int8" if ort_available() else "int8"), "cpu"
    if want == "fp16":
        return ("fp16", "cuda") if cuda else ("fp32", "cpu")
    return want, "cpu"


def generation_meta(model: nn.Module) -> dict[str, object]:
    """What the decoding loop needs from the model besides weights (stored with an ORT cache)."""
    gc = model.generation_config
    return {"start_id": _start_id(model), "eos_ids": sorted(_eos_ids(getattr(gc, "eos_token_id", None)))}


def ort_generator(folder: object, cfg: object, meta: dict[str, object], precision: str) -> FastGenerator:
    """A FastGenerator over a built ONNX Runtime cache folder (no PyTorch model needed)."""
    import numpy as np

    from assist.fast_caption_onnx import OrtCaptionModel

    threads = int(getattr(cfg, "threads", 0) or 0) or torch.get_num_threads()
    # Encoder and decoder both get the captioner's thread budget (caption.threads, else the caller's
    # torch threads: captioner.auto_threads leaves the detector a core, so 1 of 2 cores). A second
    # decoder thread makes the M=1 steps 1.55x faster on 2 idle cores (17.9 -> 11.5 ms per step), and
    # ORT's pool degrades gently when a core is taken: 1.4x slower with a busy process on the other core,
    # spinning workers or not, not the 4-8x collapse of torch's OpenMP decoding (bench/RESULTS.md, fourth pass).
    om = OrtCaptionModel(folder, encoder_threads=threads, decoder_threads=threads)  # type: ignore[arg-type]
    max_new = int(cfg.max_new_tokens)  # type: ignore[attr-defined]

    def encode(pixel_values: torch.Tensor) -> dict[str, np.ndarray]:
        return om.encode(pixel_values.detach().to("cpu", torch.float32).numpy())

    def session(image_kv: dict[str, np.ndarray]) -> Callable[[int, int], torch.Tensor]:
        run = om.session(image_kv, max_new)
        return lambda token, pos: torch.from_numpy(run(int(token), pos))

    gen = FastGenerator(encode, None, start_id=int(meta["start_id"]),  # type: ignore[arg-type]
                        eos_ids=frozenset(int(e) for e in meta["eos_ids"]),  # type: ignore[attr-defined]
                        max_new_tokens=max_new,
                        no_repeat_ngram_size=int(getattr(cfg, "no_repeat_ngram_size", 0) or 0),
                        repetition_penalty=float(getattr(cfg, "repetition_penalty", 1.0) or 1.0),
                        precision=precision, session=session)  # type: ignore[arg-type]
    gen.ort = om  # type: ignore[attr-defined]
    return gen


def cached_ort_generator(source: str, cfg: object) -> FastGenerator | None:
    """The ONNX Runtime generator for model folder ``source`` when its cache is already built, else None.

    Needs no PyTorch model: a run after the first loads only the quantized graphs. None when the
    config does not ask for an ORT path (backend transformers, beams, another precision).
    """
    if getattr(cfg, "backend", "auto") == "transformers" or int(getattr(cfg, "num_beams", 1)) != 1:
        return None
    prec, device = resolve_precision(cfg)
    if not prec.startswith("ort-") or device != "cpu":
        return None
    from assist.fast_caption_onnx import ORT_PRECISIONS, cache_key, cache_ready, cache_root, read_meta

    key = cache_key(source, None, ORT_PRECISIONS[prec])
    folder = cache_root() / "ort-captioner" / key if key else None
    if folder is None or not cache_ready(folder):
        return None
    meta = read_meta(folder).get("generation") or {}
    if meta.get("start_id") is None:
        return None
    gen = ort_generator(folder, cfg, meta, prec)
    log.info("fast captioner: %s on cpu from the cache %s", prec, folder)
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
    common = dict(start_id=_start_id(model), eos_ids=_eos_ids(getattr(gc, "eos_token_id", None)),
                  max_new_tokens=int(cfg.max_new_tokens),  # type: ignore[attr-defined]
                  no_repeat_ngram_size=int(getattr(cfg, "no_repeat_ngram_size", 0) or 0),
                  repetition_penalty=float(getattr(cfg, "repetition_penalty", 1.0) or 1.0))
    t0 = time.perf_counter()
    try:
        if prec.startswith("ort-"):
            from assist.fast_caption_onnx import ORT_PRECISIONS, ort_unsupported_reason, resolve_cache

            why = ort_unsupported_reason(model)
            if why:
                log.info("ONNX Runtime captioner not used (%s): PyTorch int8 instead", why)
                return build_fast_generator(model, cfg, precision="int8")
            folder = resolve_cache(model.eval(), source, ORT_PRECISIONS[prec], gen_meta=generation_meta(model))
            gen = ort_generator(folder, cfg, generation_meta(model), prec)
        elif device == "cuda":
            from assist.fast_caption_cuda import build_cuda_generator

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
            gen = FastGenerator(_encoder_fn(model, encoder), weights, precision=prec, decode_threads=decode_threads,
                                **common)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure here means "use plain transformers"
        log.warning("fast captioner (%s on %s) could not be built, using transformers: %s", prec, device, exc)
        return None
    log.info("fast captioner: %s on %s, built in %.1f s", prec, device, time.perf_counter() - t0)
    return gen
