"""The GPT-2 decoder of a ViT-GPT2 captioner as a plain tensor program with a KV cache.

transformers' ``generate`` spends most of a CPU caption reading every decoder weight once per
token (about 554 MB in fp32) plus a few milliseconds of Python per token (cache objects, mask
builders, logits processors). This module keeps only the arithmetic: one function call per token,
the cross-attention keys and values of the image computed once, and each projection behind a
small ``Linear`` object so the same step runs

- in fp32 with *the same kernels and operand layouts as transformers* (``torch.addmm`` on the
  ``Conv1D`` weight, ``F.linear`` on the tied embedding, SDPA with the same scale), so greedy
  tokens are identical to ``generate``;
- in int8 (dynamic quantization, per output channel) where the weight bytes per token fall 4x;
- in fp16 on CUDA with a static cache whose shapes never change, so a step can be captured in a
  CUDA graph (``static=True``).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class Linear:
    """``y = x @ W + b`` on a 2-D input; subclasses choose the storage and the kernel."""

    in_features: int
    out_features: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def nbytes(self) -> int:
        """Bytes of weight read by one call (the per-token cost on a memory-bound CPU)."""
        raise NotImplementedError


class AddmmLinear(Linear):
    """transformers' ``Conv1D`` arithmetic: ``torch.addmm(bias, x, weight)`` with weight [in, out].

    Using the very same call and layout as transformers is what makes the fp32 path bit-identical:
    ``x @ W.T`` on a transposed copy would pick another BLAS kernel and round differently.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight = weight
        self.bias = bias
        self.in_features, self.out_features = weight.shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return x @ self.weight
        return torch.addmm(self.bias, x, self.weight)

    def nbytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()


class TiedHeadLinear(Linear):
    """The output projection as transformers runs it: ``F.linear(h, wte)`` (weight [vocab, hidden])."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.out_features, self.in_features = weight.shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)

    def nbytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()


class Int8Linear(Linear):
    """Dynamic int8: weights int8 per output channel, activations quantized per call.

    ``quantize_dynamic`` ignores transformers' ``Conv1D``, so the weight is copied into an
    ``nn.Linear`` (transposed) first. Per-channel weight scales cost nothing at run time and keep
    the error of rows with small weights small; activations are quantized per tensor per call,
    which is what makes it dynamic (no calibration data needed).
    """

    def __init__(self, weight_in_out: torch.Tensor | None, bias: torch.Tensor | None, *,
                 weight_out_in: torch.Tensor | None = None) -> None:
        w = weight_out_in if weight_out_in is not None else weight_in_out.t()  # type: ignore[union-attr]
        lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if bias is not None:
                lin.bias.copy_(bias)
        self.in_features, self.out_features = lin.in_features, lin.out_features
        self.module = quantize_linear_modules(nn.Sequential(lin))[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def nbytes(self) -> int:
        return self.in_features * self.out_features


def quantize_linear_modules(module: nn.Module) -> nn.Module:
    """Every ``nn.Linear`` in ``module`` to dynamic int8 with per-channel weight scales (in place)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch announces the move of eager-mode quantization to torchao; the API still works.
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


@dataclass
class LayerWeights:
    """One GPT-2 block with cross-attention."""

    ln_1: tuple[torch.Tensor, torch.Tensor]
    ln_x: tuple[torch.Tensor, torch.Tensor]
    ln_2: tuple[torch.Tensor, torch.Tensor]
    qkv: Linear
    attn_proj: Linear
    x_q: Linear
    x_kv: Linear
    x_proj: Linear
    fc: Linear
    mlp_proj: Linear


@dataclass
class DecoderWeights:
    """The whole decoder: embeddings, blocks, final norm and output projection."""

    wte: torch.Tensor
    wpe: torch.Tensor
    layers: list[LayerWeights]
    ln_f: tuple[torch.Tensor, torch.Tensor]
    lm_head: Linear
    n_head: int
    eps: float
    scaling: float
    act: Callable[[torch.Tensor], torch.Tensor]
    eager: bool
    # int8 only: the fp32 output-head rows (the embedding, kept anyway for the lookup) used to
    # re-score the int8 head's top candidates exactly; None = use the head's logits as they are.
    head_exact: torch.Tensor | None = None
    rescore_k: int = 8

    @property
    def hidden(self) -> int:
        return self.wte.shape[1]

    def bytes_per_token(self) -> int:
        """Weight bytes one decoding step reads (cross-attention K/V projections excluded: once per image)."""
        total = self.lm_head.nbytes()
        for lw in self.layers:
            total += sum(lin.nbytes() for lin in (lw.qkv, lw.attn_proj, lw.x_q, lw.x_proj, lw.fc, lw.mlp_proj))
        return total


def _ln(mod: nn.LayerNorm, dtype: torch.dtype | None, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (mod.weight.detach().to(device=device, dtype=dtype), mod.bias.detach().to(device=device, dtype=dtype))


def extract_decoder(lm: nn.Module, precision: str, device: torch.device | None = None) -> DecoderWeights:
    """Pull the weights out of a transformers ``GPT2LMHeadModel`` (with cross-attention).

    ``precision``: "fp32" shares the model's own tensors (no copy, exact arithmetic); "int8" makes
    int8 copies of every projection and of the output head (untied from the embedding, which stays
    fp32 for the one-row lookup); "fp16" copies everything to ``device`` in half precision.
    """
    tr = lm.transformer
    cfg = lm.config
    dtype = torch.float16 if precision == "fp16" else None

    def lin(conv: nn.Module) -> Linear:
        w, b = conv.weight.detach(), conv.bias.detach()
        if precision == "int8":
            return Int8Linear(w, b)
        return AddmmLinear(w.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype))

    layers = []
    for blk in tr.h:
        layers.append(LayerWeights(
            ln_1=_ln(blk.ln_1, dtype, device), ln_x=_ln(blk.ln_cross_attn, dtype, device),
            ln_2=_ln(blk.ln_2, dtype, device),
            qkv=lin(blk.attn.c_attn), attn_proj=lin(blk.attn.c_proj),
            x_q=lin(blk.crossattention.q_attn), x_kv=lin(blk.crossattention.c_attn),
            x_proj=lin(blk.crossattention.c_proj),
            fc=lin(blk.mlp.c_fc), mlp_proj=lin(blk.mlp.c_proj),
        ))
    head_w = lm.lm_head.weight.detach()
    if precision == "int8":
        head: Linear = Int8Linear(None, None, weight_out_in=head_w)
    else:
        head = TiedHeadLinear(head_w.to(device=device, dtype=dtype))
    head_dim = cfg.n_embd // cfg.n_head
    scaling = head_dim ** -0.5 if cfg.scale_attn_weights else 1.0
    return DecoderWeights(
        wte=tr.wte.weight.detach().to(device=device, dtype=dtype),
        wpe=tr.wpe.weight.detach().to(device=device, dtype=dtype),
        layers=layers, ln_f=_ln(tr.ln_f, dtype, device), lm_head=head, n_head=cfg.n_head,
        eps=cfg.layer_norm_epsilon, scaling=scaling, act=copy.deepcopy(tr.h[0].mlp.act),
        eager=getattr(cfg, "_attn_implementation", "sdpa") == "eager",
        head_exact=head_w if precision == "int8" else None,
    )


def _attend(w: DecoderWeights, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
            mask: torch.Tensor | None) -> torch.Tensor:
    """Attention exactly as transformers' sdpa (or eager) integration computes it."""
    if w.eager:
        a = torch.matmul(q, k.transpose(-1, -2)) * w.scaling
        if mask is not None:
            a = a + mask
        a = F.softmax(a, dim=-1).type(v.dtype)
        return torch.matmul(a, v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=w.scaling, is_causal=False)


def cross_kv(w: DecoderWeights, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values of the image tokens for every layer: computed once per caption."""
    n, d = enc.shape[-2], w.hidden
    hd = d // w.n_head
    flat = enc.reshape(-1, d)
    out = []
    for lw in w.layers:
        k, v = lw.x_kv(flat).view(1, n, 2 * d).split(d, dim=2)
        k, v = k.view(1, n, w.n_head, hd).transpose(1, 2), v.view(1, n, w.n_head, hd).transpose(1, 2)
        if w.head_exact is not None:
            # int8 path: contiguous copies, made once per caption, spare the attention kernel a strided
            # read 16 times. (fp32 keeps transformers' strided views so nothing can round differently.)
            k, v = k.contiguous(), v.contiguous()
        out.append((k, v))
    return out


def step(w: DecoderWeights, token: torch.Tensor, pos: int, cache: list[list[torch.Tensor]],
         xkv: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """One decoding step with a growing KV cache (CPU): returns the logits [vocab] of the next token.

    ``token`` is a 0-d long tensor; ``cache`` holds [keys, values] per layer (empty lists at first)
    and grows by concatenation, as transformers' DynamicCache does (same values, same layout).
    """
    d, nh = w.hidden, w.n_head
    hd = d // nh
    h = (w.wte[token] + w.wpe[pos]).view(1, d)
    for i, lw in enumerate(w.layers):
        x = F.layer_norm(h, (d,), lw.ln_1[0], lw.ln_1[1], w.eps)
        q, k, v = lw.qkv(x).view(1, 1, 3 * d).split(d, dim=2)
        q = q.view(1, 1, nh, hd).transpose(1, 2)
        k = k.view(1, 1, nh, hd).transpose(1, 2)
        v = v.view(1, 1, nh, hd).transpose(1, 2)
        kv = cache[i]
        if kv:
            kv[0] = torch.cat([kv[0], k], dim=-2)
            kv[1] = torch.cat([kv[1], v], dim=-2)
        else:
            kv.extend((k, v))
        a = _attend(w, q, kv[0], kv[1], None).transpose(1, 2).reshape(1, d)
        h = lw.attn_proj(a) + h
        x = F.layer_norm(h, (d,), lw.ln_x[0], lw.ln_x[1], w.eps)
        q = lw.x_q(x).view(1, 1, nh, hd).transpose(1, 2)
        a = _attend(w, q, xkv[i][0], xkv[i][1], None).transpose(1, 2).reshape(1, d)
        h = h + lw.x_proj(a)
        x = F.layer_norm(h, (d,), lw.ln_2[0], lw.ln_2[1], w.eps)
        h = h + lw.mlp_proj(w.act(lw.fc(x)))
    h = F.layer_norm(h, (d,), w.ln_f[0], w.ln_f[1], w.eps)
    logits = w.lm_head(h).view(-1).float()
    if w.head_exact is not None:
        # The int8 head's error is largest relative to the gap between the top few tokens, which is
        # exactly where greedy decides: re-score the top k in fp32 (k rows, ~25 KB, vs 38 MB of head).
        top = logits.topk(w.rescore_k).indices
        logits[top] = (w.head_exact.index_select(0, top) @ h.view(-1, 1)).view(-1)
    return logits


class StaticCache:
    """Preallocated keys/values [layers, 1, heads, max_len, head_dim] so every step has the same shapes.

    A step writes its key/value at ``pos`` (a 1-element long tensor, so a CUDA graph can replay it
    for any position) and attends over the whole buffer with a mask that hides the unwritten slots.
    """

    def __init__(self, w: DecoderWeights, max_len: int, device: torch.device, dtype: torch.dtype) -> None:
        hd = w.hidden // w.n_head
        shape = (len(w.layers), 1, w.n_head, max_len, hd)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.slots = torch.arange(max_len, device=device)
        self.max_len = max_len


def static_step(w: DecoderWeights, token: torch.Tensor, pos: torch.Tensor, cache: StaticCache,
                xk: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
    """One step on a :class:`StaticCache`: fixed shapes and no host sync (CUDA-graph capturable).

    ``token``/``pos``: long tensors of shape [1]; ``xk``/``xv``: stacked cross keys/values
    [layers, 1, heads, n_img, head_dim]. Returns float32 logits [vocab].
    """
    d, nh = w.hidden, w.n_head
    hd = d // nh
    h = (w.wte.index_select(0, token) + w.wpe.index_select(0, pos)).view(1, d)
    visible = (cache.slots <= pos).view(1, 1, 1, -1)  # bool mask: True = attend
    mask = torch.zeros(visible.shape, dtype=h.dtype, device=h.device).masked_fill(~visible, -math.inf)
    for i, lw in enumerate(w.layers):
        x = F.layer_norm(h, (d,), lw.ln_1[0], lw.ln_1[1], w.eps)
        q, k, v = lw.qkv(x).view(1, 1, 3 * d).split(d, dim=2)
        q = q.view(1, 1, nh, hd).transpose(1, 2)
        cache.k[i].index_copy_(2, pos, k.view(1, 1, nh, hd).transpose(1, 2))
        cache.v[i].index_copy_(2, pos, v.view(1, 1, nh, hd).transpose(1, 2))
        a = _attend(w, q, cache.k[i], cache.v[i], mask).transpose(1, 2).reshape(1, d)
        h = lw.attn_proj(a) + h
        x = F.layer_norm(h, (d,), lw.ln_x[0], lw.ln_x[1], w.eps)
        q = lw.x_q(x).view(1, 1, nh, hd).transpose(1, 2)
        a = _attend(w, q, xk[i], xv[i], None).transpose(1, 2).reshape(1, d)
        h = h + lw.x_proj(a)
        x = F.layer_norm(h, (d,), lw.ln_2[0], lw.ln_2[1], w.eps)
        h = h + lw.mlp_proj(w.act(lw.fc(x)))
    h = F.layer_norm(h, (d,), w.ln_f[0], w.ln_f[1], w.eps)
    return w.lm_head(h).view(-1).float()
