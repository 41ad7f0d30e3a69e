"""ViT-GPT2 captioning on ONNX Runtime: int8 encoder, weight-only int8 (``MatMulNBits``) decoder.

Why: on a small AVX2 CPU a greedy caption is bound by reading every decoder weight once per token.
ONNX Runtime's ``MatMulNBits`` kernels are written for exactly that case (M = 1, LLM decoding): the
weights stay int8 in blocks of 128 with one fp32 scale each (the output head in 4 bits, blocks of 32,
its top candidates re-scored in fp32), activations are quantized to int8 per block on the fly
(``accuracy_level=4``), and at 2 threads the kernel streams the weights at about the machine's
memory bandwidth, where PyTorch's fbgemm dynamic int8 reaches about half of it (bench/RESULTS.md).
The encoder (197 image tokens: compute-bound) uses dynamic int8 MatMuls (MLAS u8s8 GEMM).

The graphs are written out op by op from the model's tensors (no exporter involved, so nothing
depends on the torch exporter of the day):

- ``encoder.onnx``: pixel values -> for every decoder layer the image keys [H, hd, N] and values
  [H, N, hd] of the cross-attention (the ViT encoder and the 12 K/V projections run once per
  image, as one graph);
- ``decoder.onnx``: one greedy step on a static KV cache: the token's embedding row (added in
  NumPy, read from the table's file, so the 154 MB embedding never becomes resident), an additive
  mask that hides unwritten cache slots, the past keys/values and the image keys/values of every
  layer -> the logits, the final hidden state, and this token's keys/values (written into the
  cache by the caller). Inputs and outputs are bound once per caption (I/O binding).

Both sessions use the captioner's thread budget (``caption.threads``, by default all cores but the
detector's), with workers that spin only while a Run is active.

Files are cached under ``$ASSIST_CACHE`` (default ``~/.cache/assist``) in a folder keyed by the
model folder's path, its weight files' sizes and mtimes and the build settings, so a run after the
first loads only the quantized graphs (about 230 MB) and never materialises the fp32 PyTorch model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # bump when the graphs change: old cache folders are then simply not found
ORT_PRECISIONS = {"ort-int8": 8, "ort-int4": 4}
# Quantization block of the decoder's MatMulNBits weights, per bit width. int8 at block 128: each block
# carries an fp32 scale and (for the int8-compute kernel) a block sum, so 128 instead of 32 cut the
# decoder session from 188 to 147 MB resident at the same decoding time (bench/RESULTS.md, third pass);
# 8-bit rounding error barely grows with the block. int4 keeps 32: its error grows fast with the block.
BLOCK_SIZES = {8: 128, 4: 32}
BLOCK_SIZE = 32  # the fallback for any other width
# The output head (vocab x hidden, 39 MB of the int8 decoder's 143 MB read per token) is stored in 4 bits,
# blocks of 32, whatever the body's width: greedy only needs its argmax, and the top RESCORE_K[4] candidates
# are re-scored exactly from the fp32 embedding rows, so the head's rounding can only matter if the true
# best token falls out of the top 32 of 50257 (int4 logit error ~0.1 of the logits' spread, the gap from
# the best to the 32nd ~1 spread). -16 MB read per token and resident (bench/RESULTS.md, fourth pass).
HEAD_BITS = 4
HEAD_BLOCK = 32
RESCORE_K = {4: 32, 8: 8}  # candidates re-scored in fp32, per head width
GRAPH_FILES = ("encoder.onnx", "encoder.onnx.data", "decoder.onnx", "decoder.onnx.data", "wte.npy", "wpe.npy")


def ort_available() -> bool:
    """True when onnxruntime and onnx can be imported (the ORT paths need both to build a cache)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ graph building


class _Graph:
    """A tiny helper over ``onnx.helper``: unique names, initializers from NumPy, op calls."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def shape(self, *dims: int) -> str:
        return self.const(f"shape_{'_'.join(str(d).replace('-', 'm') for d in dims)}_{self.n}",
                          np.array(dims, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], *, outputs: list[str] | None = None, n_out: int = 1,
           domain: str = "", **attrs: Any) -> Any:
        from onnx import helper

        self.n += 1
        outs = outputs or [f"{op_type.lower()}_{self.n}_{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self.n}", domain=domain,
                                           **attrs))
        return outs[0] if len(outs) == 1 else outs

    def linear(self, x: str, w_in_out: np.ndarray, b: np.ndarray | None, name: str) -> str:
        """``x @ W + b`` as MatMul (+ Add): the MatMul with a constant 2-D weight is what gets quantized."""
        y = self.op("MatMul", [x, self.const(name + ".w", w_in_out.astype(np.float32))])
        return self.op("Add", [y, self.const(name + ".b", b.astype(np.float32))]) if b is not None else y

    def layer_norm(self, x: str, g: np.ndarray, b: np.ndarray, eps: float, name: str) -> str:
        return self.op("LayerNormalization", [x, self.const(name + ".g", g.astype(np.float32)),
                                              self.const(name + ".b", b.astype(np.float32))], axis=-1, epsilon=eps)

    def model(self, inputs: list[Any], outputs: list[Any]) -> Any:
        from onnx import helper

        graph = helper.make_graph(self.nodes, "g", inputs, outputs, initializer=self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                       helper.make_opsetid("com.microsoft", 1)], ir_version=8)


def _vi(name: str, dims: list[int | str]) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


@dataclass
class Dims:
    """The shapes both graphs and the runtime loop need."""

    d: int  # decoder hidden size
    n_head: int
    n_layer: int
    vocab: int
    n_pos: int
    scaling: float
    eps: float

    @property
    def hd(self) -> int:
        return self.d // self.n_head


def decoder_dims(model: Any) -> Dims:
    """Decoder shapes from a VisionEncoderDecoderModel's GPT-2 config."""
    c = model.config.decoder
    hd = c.n_embd // c.n_head
    return Dims(d=c.n_embd, n_head=c.n_head, n_layer=c.n_layer, vocab=c.vocab_size, n_pos=c.n_positions,
                scaling=hd ** -0.5 if c.scale_attn_weights else 1.0, eps=c.layer_norm_epsilon)


def _np(t: Any) -> np.ndarray:
    if isinstance(t, np.ndarray):  # a tensor read from the saved weights (assist/describe/fast/onnx_build.py)
        return t.astype(np.float32, copy=False)
    return t.detach().to("cpu").float().numpy()


def build_decoder_graph(model: Any, g: _Graph | None = None) -> Any:
    """The one-step GPT-2 decoder with a static KV cache (see the module docstring); ``g`` may be a graph that
    streams its weights to disk as they are made (onnx_build.StreamingGraph)."""
    dm = decoder_dims(model)
    tr = model.decoder.transformer
    d, nh, hd = dm.d, dm.n_head, dm.hd
    g = g or _Graph()
    scale = g.const("scale", np.array(dm.scaling, dtype=np.float32))
    to_q, to_k, to_flat = g.shape(nh, 1, hd), g.shape(nh, hd, 1), g.shape(1, d)
    split = g.const("split3", np.array([d, d, d], dtype=np.int64))
    inputs = [_vi("h", [1, d]), _vi("mask", [1, 1, "S"])]
    outputs = []
    h = "h"
    for i, blk in enumerate(tr.h):
        inputs += [_vi(f"pk{i}", [nh, hd, "T"]), _vi(f"pv{i}", [nh, "T", hd]),
                   _vi(f"xk{i}", [nh, hd, "N"]), _vi(f"xv{i}", [nh, "N", hd])]
        outputs += [_vi(f"nk{i}", [nh, hd, 1]), _vi(f"nv{i}", [nh, 1, hd])]
        x = g.layer_norm(h, _np(blk.ln_1.weight), _np(blk.ln_1.bias), dm.eps, f"l{i}.ln1")
        qkv = g.linear(x, _np(blk.attn.c_attn.weight), _np(blk.attn.c_attn.bias), f"l{i}.qkv")
        q, k, v = g.op("Split", [qkv, split], n_out=3, axis=1)
        q = g.op("Mul", [g.op("Reshape", [q, to_q]), scale])
        g.op("Reshape", [k, to_k], outputs=[f"nk{i}"])
        g.op("Reshape", [v, to_q], outputs=[f"nv{i}"])
        keys = g.op("Concat", [f"pk{i}", f"nk{i}"], axis=2)
        vals = g.op("Concat", [f"pv{i}", f"nv{i}"], axis=1)
        p = g.op("Softmax", [g.op("Add", [g.op("MatMul", [q, keys]), "mask"])], axis=-1)
        a = g.op("Reshape", [g.op("MatMul", [p, vals]), to_flat])
        h = g.op("Add", [g.linear(a, _np(blk.attn.c_proj.weight), _np(blk.attn.c_proj.bias), f"l{i}.o"), h])
        x = g.layer_norm(h, _np(blk.ln_cross_attn.weight), _np(blk.ln_cross_attn.bias), dm.eps, f"l{i}.lnx")
        xa = blk.crossattention
        q = g.linear(x, _np(xa.q_attn.weight), _np(xa.q_attn.bias), f"l{i}.xq")
        q = g.op("Mul", [g.op("Reshape", [q, to_q]), scale])
        p = g.op("Softmax", [g.op("MatMul", [q, f"xk{i}"])], axis=-1)
        a = g.op("Reshape", [g.op("MatMul", [p, f"xv{i}"]), to_flat])
        h = g.op("Add", [h, g.linear(a, _np(xa.c_proj.weight), _np(xa.c_proj.bias), f"l{i}.xo")])
        x = g.layer_norm(h, _np(blk.ln_2.weight), _np(blk.ln_2.bias), dm.eps, f"l{i}.ln2")
        f = g.op("FastGelu", [g.linear(x, _np(blk.mlp.c_fc.weight), None, f"l{i}.fc"),
                              g.const(f"l{i}.fc.b", _np(blk.mlp.c_fc.bias))], domain="com.microsoft")
        h = g.op("Add", [h, g.linear(f, _np(blk.mlp.c_proj.weight), _np(blk.mlp.c_proj.bias), f"l{i}.mp")])
    g.layer_norm(h, _np(tr.ln_f.weight), _np(tr.ln_f.bias), dm.eps, "lnf")
    g.nodes[-1].output[0] = "hf"
    g.linear("hf", _np(model.decoder.lm_head.weight).T, None, "head")
    g.nodes[-1].output[0] = "logits"
    outputs = [_vi("logits", [1, dm.vocab]), _vi("hf", [1, d])] + outputs
    return g.model(inputs, outputs)


def build_encoder_graph(model: Any, g: _Graph | None = None) -> Any:
    """ViT encoder + every decoder layer's cross-attention keys/values (one graph, once per image)."""
    ec = model.config.encoder
    enc = model.encoder
    dm = decoder_dims(model)
    d, nh = ec.hidden_size, ec.num_attention_heads
    hd = d // nh
    p, size, ch = ec.patch_size, ec.image_size, ec.num_channels
    grid = size // p
    n = grid * grid + 1
    g = g or _Graph()
    emb = enc.embeddings
    x = g.op("Conv", ["pixel_values", g.const("patch.w", _np(emb.patch_embeddings.projection.weight)),
                      g.const("patch.b", _np(emb.patch_embeddings.projection.bias))], kernel_shape=[p, p],
             strides=[p, p])
    x = g.op("Transpose", [g.op("Reshape", [x, g.shape(d, grid * grid)])], perm=[1, 0])
    x = g.op("Concat", [g.const("cls", _np(emb.cls_token).reshape(1, d)), x], axis=0)
    h = g.op("Add", [x, g.const("pos", _np(emb.position_embeddings).reshape(n, d))])
    scale = g.const("scale", np.array(hd ** -0.5, dtype=np.float32))
    heads = g.shape(n, nh, hd)
    split = g.const("split3", np.array([d, d, d], dtype=np.int64))
    for i, layer in enumerate(_vit_layers(enc)):
        at = layer.attention
        qp, kp, vp, op = _vit_projections(at)
        x = g.layer_norm(h, _np(layer.layernorm_before.weight), _np(layer.layernorm_before.bias),
                         ec.layer_norm_eps, f"e{i}.ln1")
        w = np.concatenate([_np(qp.weight).T, _np(kp.weight).T, _np(vp.weight).T], axis=1)
        b = np.concatenate([_np(m.bias) if m.bias is not None else np.zeros(d, np.float32) for m in (qp, kp, vp)])
        q, k, v = g.op("Split", [g.linear(x, w, b, f"e{i}.qkv"), split], n_out=3, axis=1)
        q = g.op("Mul", [g.op("Transpose", [g.op("Reshape", [q, heads])], perm=[1, 0, 2]), scale])
        k = g.op("Transpose", [g.op("Reshape", [k, heads])], perm=[1, 2, 0])
        v = g.op("Transpose", [g.op("Reshape", [v, heads])], perm=[1, 0, 2])
        pr = g.op("Softmax", [g.op("MatMul", [q, k])], axis=-1)
        a = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [pr, v])], perm=[1, 0, 2]), g.shape(n, d)])
        h = g.op("Add", [g.linear(a, _np(op.weight).T, _np(op.bias), f"e{i}.o"), h])
        x = g.layer_norm(h, _np(layer.layernorm_after.weight), _np(layer.layernorm_after.bias),
                         ec.layer_norm_eps, f"e{i}.ln2")
        fc1, fc2 = _vit_mlp(layer)
        f = g.op("Gelu", [g.linear(x, _np(fc1.weight).T, _np(fc1.bias), f"e{i}.fc1")], domain="com.microsoft")
        h = g.op("Add", [h, g.linear(f, _np(fc2.weight).T, _np(fc2.bias), f"e{i}.fc2")])
    states = g.layer_norm(h, _np(enc.layernorm.weight), _np(enc.layernorm.bias), ec.layer_norm_eps, "eln")
    dheads = g.shape(n, dm.n_head, dm.hd)
    split2 = g.const("split2", np.array([dm.d, dm.d], dtype=np.int64))
    outputs = []
    for i, blk in enumerate(model.decoder.transformer.h):
        c = blk.crossattention.c_attn
        k, v = g.op("Split", [g.linear(states, _np(c.weight), _np(c.bias), f"x{i}.kv"), split2], n_out=2, axis=1)
        g.op("Transpose", [g.op("Reshape", [k, dheads])], perm=[1, 2, 0], outputs=[f"xk{i}"])
        g.op("Transpose", [g.op("Reshape", [v, dheads])], perm=[1, 0, 2], outputs=[f"xv{i}"])
        outputs += [_vi(f"xk{i}", [dm.n_head, dm.hd, n]), _vi(f"xv{i}", [dm.n_head, n, dm.hd])]
    return g.model([_vi("pixel_values", [1, ch, size, size])], outputs)


def _vit_layers(enc: Any) -> Any:
    """The ViT blocks (transformers 5 names them ``layers``, earlier versions ``encoder.layer``)."""
    return enc.layers if hasattr(enc, "layers") else enc.encoder.layer


def _vit_projections(at: Any) -> tuple[Any, Any, Any, Any]:
    if hasattr(at, "q_proj"):
        return at.q_proj, at.k_proj, at.v_proj, at.o_proj
    return at.attention.query, at.attention.key, at.attention.value, at.output.dense


def _vit_mlp(layer: Any) -> tuple[Any, Any]:
    if hasattr(layer, "mlp"):
        return layer.mlp.fc1, layer.mlp.fc2
    return layer.intermediate.dense, layer.output.dense


def ort_unsupported_reason(model: Any) -> str | None:
    """Why the ONNX graphs above would not compute this model, or None."""
    ec, dc = model.config.encoder, model.config.decoder
    if getattr(ec, "hidden_act", "gelu") != "gelu":
        return f"ViT activation {ec.hidden_act!r} (the graph uses exact gelu)"
    if getattr(dc, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        return f"GPT-2 activation {dc.activation_function!r} (the graph uses tanh gelu)"
    if ec.hidden_size != dc.n_embd:
        return "encoder and decoder widths differ (enc_to_dec_proj is not in the graph)"
    if not hasattr(model.encoder, "embeddings") or not hasattr(model.encoder, "layernorm"):
        return "encoder is not a plain ViTModel"
    if getattr(model.decoder.lm_head, "bias", None) is not None:
        return "output head has a bias"
    return None


# ------------------------------------------------------------------ quantization and the cache


def cache_root() -> Path:
    """Where built graphs live: $ASSIST_CACHE or ~/.cache/assist."""
    return Path(os.environ.get("ASSIST_CACHE") or Path.home() / ".cache" / "assist")


def cache_key(source: str | None, model: Any | None, bits: int) -> str | None:
    """A folder name for these graphs: model folder + its weight files' sizes/mtimes + build settings.

    Without a folder (a model built in memory) the key hashes the config and a sample of every
    tensor's bytes; None when neither is available.
    """
    h = hashlib.sha256(f"v{FORMAT_VERSION}|bits{bits}|block{block_size(bits)}|head{head_bits(bits)}".encode())
    if source:
        p = Path(source).resolve()
        h.update(str(p).encode())
        for f in sorted(p.iterdir()) if p.is_dir() else []:
            if f.suffix in (".safetensors", ".bin", ".json") and f.is_file():
                st = f.stat()
                h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    elif model is not None:
        h.update(model.config.to_json_string().encode())
        for name, t in model.state_dict().items():
            flat = t.detach().reshape(-1)
            h.update(name.encode() + flat[:256].float().numpy().tobytes() + flat[-256:].float().numpy().tobytes())
    else:
        return None
    return h.hexdigest()[:20]


def block_size(bits: int) -> int:
    """The MatMulNBits block for this weight width (see BLOCK_SIZES)."""
    return BLOCK_SIZES.get(bits, BLOCK_SIZE)


def head_bits(bits: int) -> int:
    """Width of the output head for a decoder of ``bits`` (0 = fp32 graphs: the head stays fp32 too)."""
    return min(bits, HEAD_BITS) if bits else 0


def _save(proto: Any, path: Path) -> None:
    """Save with the weights in ``<name>.data`` beside the graph: ONNX Runtime memory-maps external data
    instead of copying it out of the parsed protobuf, and unmaps what its kernels pre-pack, so loading
    leaves no freed-but-retained heap behind (-28 MB resident after loading both graphs, measured)."""
    import onnx

    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


def _quantize(proto: Any, bits: int) -> Any:
    """Every MatMul with a constant 2-D weight -> MatMulNBits (blocks per BLOCK_SIZES, symmetric, int8 compute);
    the output head at ``head_bits(bits)`` (see HEAD_BITS)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    head = [n.name for n in proto.graph.node if n.op_type == "MatMul" and "head.w" in n.input]
    hb = head_bits(bits)
    q = MatMulNBitsQuantizer(proto, bits=bits, block_size=block_size(bits), is_symmetric=True, accuracy_level=4,
                             nodes_to_exclude=head if hb != bits else None)
    q.process()
    out = q.model.model
    if hb != bits:
        q = MatMulNBitsQuantizer(out, bits=hb, block_size=HEAD_BLOCK, is_symmetric=True, accuracy_level=4,
                                 nodes_to_include=head)
        q.process()
        out = q.model.model
    return out


def _quantize_encoder(src: Path, dst: Path) -> None:
    """Dynamic int8 MatMuls (per-channel weights, 7-bit range: AVX2 without VNNI saturates int16 sums of
    full-range u8*s8 products, which doubled the error of the image keys in a measurement)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer advises "pre-processing" through the root logger
    try:
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def build_cache(model: Any, folder: Path, bits: int, gen_meta: dict[str, Any] | None = None) -> None:
    """Write the graphs (GRAPH_FILES: two .onnx, their .data, wte.npy, wpe.npy) and meta.json into ``folder``
    (atomically)."""
    import onnx

    t0 = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        tr = model.decoder.transformer
        np.save(tmp / "wte.npy", _np(tr.wte.weight))
        np.save(tmp / "wpe.npy", _np(tr.wpe.weight))
        # one graph at a time: the fp32 graph and its quantized copy are the build's memory peak
        # bits = 0: fp32 graphs (tests compare them with PyTorch). The encoder (M = 197 rows, compute-bound)
        # uses dynamic int8 (MLAS u8s8 GEMM, 245 ms vs 420 ms fp32 and 830 ms for MatMulNBits, which is
        # built for M = 1), whatever the decoder's bits.
        enc = build_encoder_graph(model)
        if bits:
            onnx.save(enc, str(tmp / "encoder.fp32.onnx"))
            del enc
            _quantize_encoder(tmp / "encoder.fp32.onnx", tmp / "encoder.q.onnx")
            (tmp / "encoder.fp32.onnx").unlink()
            enc = onnx.load(str(tmp / "encoder.q.onnx"))
            (tmp / "encoder.q.onnx").unlink()
        _save(enc, tmp / "encoder.onnx")
        del enc
        dec = build_decoder_graph(model)
        dec = _quantize(dec, bits) if bits else dec
        _save(dec, tmp / "decoder.onnx")
        del dec
        dm = decoder_dims(model)
        meta = {"format": FORMAT_VERSION, "bits": bits, "head_bits": head_bits(bits), "dims": dm.__dict__,
                "generation": gen_meta or {},
                "n_image_tokens": (model.config.encoder.image_size // model.config.encoder.patch_size) ** 2 + 1}
        publish_build(tmp, folder, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("ONNX Runtime int%d captioner graphs built in %.1f s: %s", bits, time.perf_counter() - t0, folder)


def publish_build(tmp: Path, folder: Path, meta: dict) -> None:
    """Finish a build made in ``tmp``: write its ``meta.json`` (what marks a cache
    entry complete) and move it in place of ``folder`` in one rename, so a reader
    never sees half a build (both builders: in memory here, from saved weights in
    ``onnx_build``)."""
    (tmp / "meta.json").write_text(json.dumps(meta))
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def cache_ready(folder: Path) -> bool:
    """True when ``folder`` holds a complete build of this format version."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT_VERSION and all(
        (folder / f).is_file() for f in GRAPH_FILES)


# ------------------------------------------------------------------ running


def _session(path: Path, threads: int, *, layout_opt: bool = True) -> Any:
    """A CPU session. ``layout_opt=False`` stops at ORT_ENABLE_EXTENDED (no layout transforms)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if layout_opt
                                   else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    # No arena: ORT's arena keeps its high-water mark of activations for good (a second image's K/V while
    # the first's are still referenced); plain malloc gave them back. -17 MB peak, same caption time
    # within noise (bench/RESULTS.md, third pass). Pre-packing stays on: disabling it cost +138 MB.
    so.enable_cpu_mem_arena = False
    # Worker threads spin between ops instead of sleeping: a sleeping worker is woken for each of the ~300
    # encoder ops and ~100 ops of every decoder step, and those wake-ups cost 16-21 % of a caption at 2
    # threads (bench/RESULTS.md, fourth pass). The workers are the captioner's own thread budget
    # (caption.threads, by default leaving the detector its core), so they spin on cores given to it; with
    # one thread there is no worker and nothing spins.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    # ... and stop spinning the moment a Run returns, so the encoder's workers do not spin through the
    # decoder's steps, nor either through the time between captions (same caption time: 396 vs 400 ms).
    so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


class OrtCaptionModel:
    """The two ORT sessions plus the memory-mapped embedding tables of one cache folder.

    ``encode(pixels) -> image K/V`` (a dict of arrays) and ``session(image_kv, max_len)`` ->
    ``run(token, pos) -> logits`` (a float32 NumPy vector, head top-k re-scored in fp32).
    """

    def __init__(self, folder: Path, *, encoder_threads: int, decoder_threads: int) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self.folder = folder
        self.bits = int(meta["bits"])
        self.head_bits = int(meta.get("head_bits", self.bits))
        self.dims = Dims(**meta["dims"])
        # fp32 graphs (bits 0) need no re-scoring; otherwise per the head's width
        self.rescore_k = min(RESCORE_K.get(self.head_bits, 32), self.dims.vocab) if self.head_bits else 0
        # The 154 MB token embedding is read row by row from the file (the input token and the head's
        # re-scored candidates): never resident. A memory map was tried: each looked-up row maps the whole
        # page-cache folio around it, and 16 steps x 32 candidates made 90-135 MB resident (measured).
        self.wte = RowFile(folder / "wte.npy")
        self.wpe = np.load(folder / "wpe.npy", mmap_mode="r")  # 3 MB: a map is fine
        self.enc = _session(folder / "encoder.onnx", encoder_threads)
        # The decoder at ORT_ENABLE_EXTENDED: the same tokens, and 4-13 % faster decoding than ORT_ENABLE_ALL in
        # three interleaved A/Bs (bench/RESULTS.md, third pass). The encoder keeps ALL (its Conv layout pass).
        self.dec = _session(folder / "decoder.onnx", decoder_threads, layout_opt=False)
        self.kv_names = [o.name for o in self.enc.get_outputs()]

    def encode(self, pixel_values: np.ndarray) -> dict[str, np.ndarray]:
        """Image keys/values of every decoder layer for pixel values [1, 3, H, W]."""
        outs = self.enc.run(self.kv_names, {"pixel_values": np.ascontiguousarray(pixel_values, dtype=np.float32)})
        return dict(zip(self.kv_names, outs, strict=True))

    def session(self, image_kv: dict[str, np.ndarray], max_len: int) -> Callable[[int, int], np.ndarray]:
        """A step function over a static cache of ``max_len`` slots for one image.

        Every input and output is bound once to a NumPy buffer (ONNX Runtime I/O binding) and updated in
        place, so a step converts no arrays and allocates no outputs: 183 -> 174 ms of decoding per caption
        at 2 threads (bench/RESULTS.md, fourth pass). ``run.outputs`` holds the raw outputs of the last step.
        """
        import onnxruntime as ort

        dm = self.dims
        nh, hd = dm.n_head, dm.hd
        pk = [np.zeros((nh, hd, max_len), np.float32) for _ in range(dm.n_layer)]
        pv = [np.zeros((nh, max_len, hd), np.float32) for _ in range(dm.n_layer)]
        mask = np.full((1, 1, max_len + 1), -np.inf, np.float32)
        mask[..., -1] = 0.0  # the current token always sees itself
        h = np.zeros((1, dm.d), np.float32)
        feed: dict[str, np.ndarray] = {"h": h, "mask": mask}
        for i in range(dm.n_layer):
            feed[f"pk{i}"], feed[f"pv{i}"] = pk[i], pv[i]
            feed[f"xk{i}"] = np.ascontiguousarray(image_kv[f"xk{i}"], dtype=np.float32)
            feed[f"xv{i}"] = np.ascontiguousarray(image_kv[f"xv{i}"], dtype=np.float32)
        outs = {"logits": np.zeros((1, dm.vocab), np.float32), "hf": np.zeros((1, dm.d), np.float32)}
        for i in range(dm.n_layer):
            outs[f"nk{i}"] = np.zeros((nh, hd, 1), np.float32)
            outs[f"nv{i}"] = np.zeros((nh, 1, hd), np.float32)
        binding = self.dec.io_binding()
        values = []  # the OrtValues view the NumPy buffers above; both must outlive the binding
        for name, arr in feed.items():
            values.append(ort.OrtValue.ortvalue_from_numpy(arr))
            binding.bind_ortvalue_input(name, values[-1])
        for name, arr in outs.items():
            values.append(ort.OrtValue.ortvalue_from_numpy(arr))
            binding.bind_ortvalue_output(name, values[-1])

        def run(token: int, pos: int) -> np.ndarray:
            if pos >= max_len or pos >= dm.n_pos:
                raise ValueError(f"position {pos} beyond the cache ({max_len}) or the model ({dm.n_pos})")
            np.add(self.wte[token], self.wpe[pos], out=h[0])
            self.dec.run_with_iobinding(binding)
            for i in range(dm.n_layer):
                pk[i][:, :, pos] = outs[f"nk{i}"][:, :, 0]
                pv[i][:, pos, :] = outs[f"nv{i}"][:, 0, :]
            mask[..., pos] = 0.0
            return rescore_top(outs["logits"].reshape(-1).copy(), outs["hf"].reshape(-1), self.wte, self.rescore_k)

        run.outputs = outs  # type: ignore[attr-defined]
        run.keep_alive = (binding, values, feed)  # type: ignore[attr-defined]
        return run


class RowFile:
    """Rows of a 2-D float32 ``.npy`` file, read on demand with ``os.pread`` (nothing mapped, nothing kept)."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if len(shape) != 2 or fortran or dtype != np.float32:
            raise ValueError(f"{path}: expected a C-ordered 2-D float32 array, got {shape} {dtype}")
        self.path, self.shape, self.offset = path, shape, offset
        self.row_bytes = shape[1] * 4
        self.fd = os.open(path, os.O_RDONLY)

    def __getitem__(self, index: int | np.ndarray) -> np.ndarray:
        """Row ``index`` ([cols]) or rows ``index`` ([len(index), cols]) as a new float32 array."""
        if np.ndim(index) == 0:
            return np.frombuffer(self._read(int(index)), np.float32)
        rows = [self._read(int(i)) for i in np.asarray(index).reshape(-1)]
        return np.frombuffer(b"".join(rows), np.float32).reshape(len(rows), self.shape[1])

    def _read(self, i: int) -> bytes:
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"row {i} outside 0..{self.shape[0] - 1} of {self.path.name}")
        data = os.pread(self.fd, self.row_bytes, self.offset + i * self.row_bytes)
        if len(data) != self.row_bytes:
            raise OSError(f"{self.path}: short read at row {i} (file truncated?)")
        return data

    def close(self) -> None:
        """Close the file (also done when the object is collected)."""
        fd, self.fd = getattr(self, "fd", -1), -1  # also safe on an object whose __init__ failed
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def rescore_top(logits: np.ndarray, hidden: np.ndarray, wte: np.ndarray | RowFile, k: int) -> np.ndarray:
    """``logits`` with its top ``k`` entries replaced by their exact fp32 values ``wte[top] @ hidden``.

    The quantized head's error matters only between the top few candidates, where greedy decides; re-scoring
    reads k x hidden floats of the embedding, ~100 KB for k = 32.
    """
    if k <= 0:
        return logits
    top = np.argpartition(logits, -k)[-k:]
    logits[top] = wte[top] @ hidden
    return logits


def read_meta(folder: Path) -> dict[str, Any]:
    """meta.json of a built cache folder."""
    return json.loads((folder / "meta.json").read_text())


def resolve_cache(model: Any | None, source: str | None, bits: int, *, build: bool = True,
                  gen_meta: dict[str, Any] | None = None) -> Path | None:
    """The cache folder for this model (building it from ``model`` when missing and allowed)."""
    key = cache_key(source, model if source is None else None, bits)
    if key is None:
        return None
    folder = cache_root() / "ort-captioner" / key
    if cache_ready(folder):
        return folder
    if not build or model is None:
        return None
    build_cache(model, folder, bits, gen_meta)
    return folder
