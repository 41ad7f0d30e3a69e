"""The PyTorch greedy decoding loop (fp32 and int8 on the CPU; the CUDA path in
:mod:`assist.describe.fast.cuda` reuses it): the encoder once, then one decoder step per token with
a KV cache, instead of ``generate``'s per-token Python. Which backend a config gets is decided in
:mod:`assist.describe.fast` (``build_fast_generator``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from assist.describe.fast.decoder import DecoderWeights, cross_kv, quantize_linear_modules, step
from assist.describe.fast.ngram import banned_ngram_tokens

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


def eos_ids_of(value: object) -> frozenset[int]:
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
    if start_id_of(model) is None:
        return "no decoder_start_token_id"
    return None


def start_id_of(model: nn.Module) -> int | None:
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


def encoder_fn(model: nn.Module, encoder: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
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
