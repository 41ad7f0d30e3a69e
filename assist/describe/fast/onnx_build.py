"""Build the ONNX Runtime captioner's graphs from the saved weights, one part per child process.

Why: the first run used to load the fp32 PyTorch model (1.2 GB, after ``import torch``'s 0.7-0.85 GB)
and then write and quantize both graphs in memory beside it: a 3.5 GB peak, enough for the kernel to
kill the agent on a 4 GB Jetson Nano or Raspberry Pi. Here nothing holds the whole model:

- tensors are read one at a time from the model folder's ``.safetensors`` (NumPy, memory-mapped by
  safetensors; no torch) through :class:`SavedWeights`, which answers the attribute paths the graph
  builders of ``assist.describe.fast.onnx_runtime`` use (``model.decoder.transformer.h[3].attn.c_attn.weight``);
- :class:`StreamingGraph` writes every initializer to the graph's ``.data`` file as soon as it is made,
  and the decoder's MatMul weights are quantized right there with ONNX Runtime's own block quantizer
  (the kernels ``MatMulNBitsQuantizer`` calls, so the bytes are the same as before), so the decoder's
  fp32 weights never exist all at once;
- each part (tables, encoder, decoder) runs in its own child process, which prints its own peak
  (VmHWM); :func:`build_in_children` returns the largest. The encoder keeps ONNX Runtime's dynamic
  quantizer, run on its fp32 graph (~400 MB) in its child.

Only a folder with ``.safetensors`` weights of a supported ViT-GPT2 model is built this way; anything
else (``pytorch_model.bin``, an unsupported model) returns None and the caller loads the model as before.
A child is this file loaded by path (``CHILD_CODE``) with the arguments ``MODEL_DIR OUT_DIR PART BITS``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHILD_MODULE_NAME = "assist_onnx_build_child"
# How a child starts: this file loaded by path, so that no package __init__ (torch) runs first.
CHILD_CODE = ("import importlib.util as u, sys; s = u.spec_from_file_location({name!r}, {path!r}); "
              "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
              "sys.exit(m.main(sys.argv[1:]))")
if __name__ == CHILD_MODULE_NAME:
    # A build child (see build_in_children): the package assist.describe.fast imports torch in its __init__
    # (0.7 GB and seconds), which the graph builders of onnx_runtime.py (NumPy, onnx) do not need: load that
    # one file on its own.
    import importlib.util

    _spec = importlib.util.spec_from_file_location("assist_onnx_runtime_child", Path(__file__).with_name("onnx_runtime.py"))
    assert _spec is not None and _spec.loader is not None
    fo = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = fo  # dataclasses look their module up there
    _spec.loader.exec_module(fo)
else:
    from assist.describe.fast import onnx_runtime as fo

log = logging.getLogger(__name__)

PARTS = ("tables", "encoder", "decoder")
ALIGN = 4096  # external data offsets on page boundaries, so ONNX Runtime can memory-map every tensor
INLINE_BYTES = 1024  # smaller tensors stay inside the graph (as the in-memory build's size_threshold)


class SavedWeights:
    """Attribute access over the tensors of a model folder's safetensors files: ``w.encoder.layernorm.weight``
    is the NumPy array of ``encoder.layernorm.weight``; ``w.decoder.transformer.h`` iterates the blocks.
    Missing paths raise AttributeError, so the builders' ``hasattr`` checks of naming variants work."""

    def __init__(self, files: dict[str, Any], prefix: str = "", config: Any = None) -> None:
        self._files, self._prefix = files, prefix
        if config is not None:
            self.config = config

    @classmethod
    def open(cls, folder: Path, config: Any = None) -> SavedWeights | None:
        """The saved weights of ``folder``, or None without safetensors files."""
        paths = sorted(folder.glob("*.safetensors"))
        if not paths:
            return None
        files: dict[str, Any] = {}
        for p in paths:
            f = SafetensorsFile(p)
            for k in f.names():
                files[k] = f
        # GPT-2's output head is tied to the token embedding and not saved separately
        if "decoder.lm_head.weight" not in files and "decoder.transformer.wte.weight" in files:
            files["decoder.lm_head.weight"] = ("alias", "decoder.transformer.wte.weight")
        return cls(files, "", config)

    def _tensor(self, key: str) -> np.ndarray:
        f = self._files[key]
        if isinstance(f, tuple):
            return self._tensor(f[1])
        return f.get_tensor(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        key = self._prefix + name
        if key in self._files:
            return self._tensor(key)
        sub = key + "."
        if any(k.startswith(sub) for k in self._files):
            return SavedWeights(self._files, sub)
        raise AttributeError(f"no saved tensor under {key!r}")

    def __getitem__(self, i: int) -> SavedWeights:
        sub = f"{self._prefix}{i}."
        if not any(k.startswith(sub) for k in self._files):
            raise IndexError(i)
        return SavedWeights(self._files, sub)

    def __iter__(self) -> Any:
        i = 0
        while True:
            try:
                yield self[i]
            except IndexError:
                return
            i += 1


class SafetensorsFile:
    """Tensors of one ``.safetensors`` file read with ``os.pread``: nothing is memory-mapped, so the pages of
    tensors already used do not stay in this process's resident set (the ``safetensors`` package maps the
    file: reading the decoder's tensors through it left ~600 MB resident, measured: 938 MB peak)."""

    DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            self.header = json.loads(f.read(n))
        self.header.pop("__metadata__", None)
        self.base = 8 + n

    def names(self) -> list[str]:
        """Tensor names in the file."""
        return list(self.header)

    def get_tensor(self, key: str) -> np.ndarray:
        """One tensor as a new array (float32 for bf16, which NumPy has no type for)."""
        info = self.header[key]
        start, end = info["data_offsets"]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            raw = bytearray(end - start)
            view, got = memoryview(raw), 0
            while got < len(raw):
                chunk = os.preadv(fd, [view[got:]], self.base + start + got)
                if chunk <= 0:
                    raise OSError(f"{self.path}: short read of {key}")
                got += chunk
        finally:
            os.close(fd)
        if info["dtype"] == "BF16":
            return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
        return np.frombuffer(raw, self.DTYPES[info["dtype"]]).reshape(info["shape"])


class StreamingGraph(fo._Graph):
    """A graph whose initializers go to ``data_path`` as they are made. Its MatMul weights are quantized as
    they are written: with ``bits``, as MatMulNBits blocks (body ``bits``, output head per ``fo.head_bits``:
    the decoder); with ``dynamic_int8``, as the MatMulInteger pattern of ONNX Runtime's ``quantize_dynamic``
    (per-channel symmetric 7-bit weights, activations quantized at run time: the encoder)."""

    def __init__(self, data_path: Path, bits: int = 0, *, dynamic_int8: bool = False) -> None:
        super().__init__()
        self.data = open(data_path, "wb")  # noqa: SIM115 - closed by close(), after the last tensor
        self.location = data_path.name
        self.bits = bits
        self.dynamic_int8 = dynamic_int8
        self._quantized_inputs: dict[str, list[str]] = {}

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import TensorProto, helper, numpy_helper

        arr = np.ascontiguousarray(value)
        if arr.nbytes < INLINE_BYTES:
            self.inits.append(numpy_helper.from_array(arr, name))
            return name
        pad = (-self.data.tell()) % ALIGN
        if pad:
            self.data.write(b"\0" * pad)
        offset = self.data.tell()
        self.data.write(arr.data)
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.location), ("offset", str(offset)), ("length", str(arr.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = k, v
        self.inits.append(t)
        return name

    def linear(self, x: str, w_in_out: np.ndarray, b: np.ndarray | None, name: str) -> str:
        if self.dynamic_int8:
            return self._dynamic_linear(x, w_in_out, b, name)
        if not self.bits:
            return super().linear(x, w_in_out, b, name)
        head = name == "head"
        bits = fo.head_bits(self.bits) if head else self.bits
        block = fo.HEAD_BLOCK if head and bits != self.bits else fo.block_size(bits)
        packed, scales = quantize_blocks(w_in_out, bits, block)
        k, n = w_in_out.shape
        y = self.op("MatMulNBits", [x, self.const(f"{name}.w_Q{bits}", packed), self.const(f"{name}.w_scales", scales)],
                    domain="com.microsoft", K=k, N=n, bits=bits, block_size=block, accuracy_level=4)
        return self.op("Add", [y, self.const(name + ".b", b.astype(np.float32))]) if b is not None else y

    def _dynamic_linear(self, x: str, w: np.ndarray, b: np.ndarray | None, name: str) -> str:
        """``quantize_dynamic``'s MatMul: DynamicQuantizeLinear(x) (once per input), MatMulInteger, Cast,
        Mul by x_scale * w_scale, with the weights quantized by its own ``quantize_data`` column by column."""
        from onnx import TensorProto
        from onnxruntime.quantization.quant_utils import quantize_data

        w = np.ascontiguousarray(w, dtype=np.float32)
        cols = [quantize_data(w[:, i].flatten(), TensorProto.INT8, True, reduce_range=True, min_real_range=None,
                              rmin_override=None, rmax_override=None) for i in range(w.shape[1])]
        wq = np.concatenate([np.asarray(q).reshape(-1, 1) for _, _, q in cols], axis=1).astype(np.int8)
        scale = np.array([float(np.asarray(s).reshape(-1)[0]) for _, s, _ in cols], dtype=np.float32)
        zp = np.array([int(np.asarray(z).reshape(-1)[0]) for z, _, _ in cols], dtype=np.int8)
        del cols
        if x not in self._quantized_inputs:
            self._quantized_inputs[x] = self.op("DynamicQuantizeLinear", [x], n_out=3)
        xq, xs, xzp = self._quantized_inputs[x]
        scales = self.op("Mul", [xs, self.const(name + ".w_scale", scale)])
        y = self.op("MatMulInteger", [xq, self.const(name + ".w_quantized", wq), xzp,
                                      self.const(name + ".w_zero_point", zp)])
        y = self.op("Mul", [self.op("Cast", [y], to=TensorProto.FLOAT), scales])
        return self.op("Add", [y, self.const(name + ".b", b.astype(np.float32))]) if b is not None else y

    def close(self) -> None:
        """Flush and close the data file."""
        self.data.close()


def quantize_blocks(w: np.ndarray, bits: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric block quantization of a [K, N] weight with ONNX Runtime's kernels (as MatMulNBitsQuantizer):
    (packed [N, K/block, block*bits/8] uint8, scales [N, K/block] float32)."""
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    w = np.ascontiguousarray(w, dtype=np.float32)
    rows, cols = w.shape
    kpack = 8 // bits
    k_blocks = (rows + block - 1) // block
    if k_blocks * block != rows:
        w = np.pad(w, ((0, k_blocks * block - rows), (0, 0)))
    packed = np.zeros((cols, k_blocks, (block + kpack - 1) // kpack), dtype=np.uint8)
    zero_point = np.zeros((cols, (k_blocks + kpack - 1) // kpack), dtype=np.uint8)
    scales = np.zeros((cols, k_blocks), dtype=np.float32)
    quantize = quantize_matmul_8bits if bits == 8 else quantize_matmul_4bits
    quantize(packed, w, scales, zero_point, block, cols, rows, True)
    return packed, scales


def _write_graph(g: fo._Graph, model_proto: Any, path: Path) -> None:
    if isinstance(g, StreamingGraph):
        g.close()
    path.write_bytes(model_proto.SerializeToString())


def build_part(source: Path, out: Path, part: str, bits: int) -> None:
    """Write one part of the cache folder ``out`` from the saved weights of ``source`` (runs in a child).

    The model's config comes from ``out/CONFIG_FILE`` (written by the parent): importing transformers'
    config classes imports torch (0.7 GB, 1.5-5 s), which this child does without."""
    from types import SimpleNamespace

    conf = json.loads((out / CONFIG_FILE).read_text())
    config = SimpleNamespace(encoder=SimpleNamespace(**conf["encoder"]), decoder=SimpleNamespace(**conf["decoder"]))
    weights = SavedWeights.open(source, config)
    if weights is None:
        raise FileNotFoundError(f"{source}: no .safetensors weights")
    if part == "tables":
        tr = weights.decoder.transformer
        np.save(out / "wte.npy", fo._np(tr.wte.weight))
        np.save(out / "wpe.npy", fo._np(tr.wpe.weight))
    elif part == "encoder":
        # dynamic int8 whatever the decoder's bits (see fo.build_cache); bits 0: fp32 graphs
        g = StreamingGraph(out / "encoder.onnx.data", dynamic_int8=bool(bits))
        _write_graph(g, fo.build_encoder_graph(weights, g), out / "encoder.onnx")
    elif part == "decoder":
        g = StreamingGraph(out / "decoder.onnx.data", bits)
        _write_graph(g, fo.build_decoder_graph(weights, g), out / "decoder.onnx")
    else:
        raise ValueError(f"unknown part {part!r} (one of {', '.join(PARTS)})")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def buildable(source: str | Path) -> bool:
    """True when ``source`` is a model folder with safetensors weights (what the children can read)."""
    p = Path(source)
    return p.is_dir() and (p / "config.json").is_file() and any(p.glob("*.safetensors"))


CONFIG_FILE = "build-config.json"
LAST_BUILD: dict[str, float] = {}  # peak_mb (largest child) and seconds of the last build_in_children


def build_in_children(source: str, folder: Path, bits: int, meta: dict[str, Any], config: dict[str, Any], *,
                      timeout_s: float = 900.0) -> bool:
    """Build cache ``folder`` (atomically) from the saved weights of ``source``, one child per part.

    ``meta`` is meta.json's content without ``format`` (dims, generation, bits...); ``config`` the model
    config as ``{"encoder": {...}, "decoder": {...}}`` (transformers' ``to_dict()``). False (logged) when a
    child fails: the caller then builds from the loaded model as before.
    """
    t0 = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    peaks: list[float] = []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    root = Path(__file__).resolve().parents[3]
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, default=str))
        for part in PARTS:
            code = CHILD_CODE.format(name=CHILD_MODULE_NAME, path=str(Path(__file__).resolve()))
            proc = subprocess.run([sys.executable, "-c", code, str(source), str(tmp), part, str(bits)],
                                  capture_output=True, text=True, timeout=timeout_s, env=env, cwd=root)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("BUILD_JSON ")), None)
            if proc.returncode != 0 or line is None:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                log.warning("building the captioner's %s graph from %s failed: %s", part, source, tail)
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            peaks.append(float(json.loads(line[len("BUILD_JSON "):])["peak_mb"]))
        (tmp / CONFIG_FILE).unlink()
        fo.publish_build(tmp, folder, {"format": fo.FORMAT_VERSION, **meta})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    LAST_BUILD.update(peak_mb=max(peaks), seconds=time.perf_counter() - t0)
    log.info("ONNX Runtime captioner graphs built from the saved weights in %.1f s (largest child %.0f MB): %s",
             LAST_BUILD["seconds"], LAST_BUILD["peak_mb"], folder)
    return True


def build_for_captioner(source: str, cfg: Any) -> bool:
    """Build the ONNX Runtime cache that ``cfg`` asks for (``caption.precision`` auto / ort-int8 / ort-int4 on
    the CPU) for model folder ``source`` from its saved weights, without loading the PyTorch model.

    False when this route does not apply (another backend or precision, no safetensors, not a supported
    ViT-GPT2) or a child failed: the captioner then loads the model and builds in memory, as before."""
    from types import SimpleNamespace

    from transformers import GenerationConfig, VisionEncoderDecoderConfig

    from assist.describe.fast import generation_meta, resolve_precision
    from assist.describe.fast.torch_greedy import unsupported_reason

    if getattr(cfg, "backend", "auto") == "transformers" or int(getattr(cfg, "num_beams", 1)) != 1 \
            or not buildable(source):
        return False
    prec, device = resolve_precision(cfg)
    if not prec.startswith("ort-") or device != "cpu" or not fo.ort_available():
        return False
    try:
        config = VisionEncoderDecoderConfig.from_pretrained(source)
        try:
            gen = GenerationConfig.from_pretrained(source)
        except OSError:  # no generation_config.json: transformers derives it from the model config
            gen = GenerationConfig.from_model_config(config)
        weights = SavedWeights.open(Path(source), config)
        assert weights is not None
        stub = SimpleNamespace(config=config, generation_config=gen, encoder=weights.encoder,
                               decoder=weights.decoder)
        why = unsupported_reason(stub, cfg) or fo.ort_unsupported_reason(stub)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - not a ViT-GPT2 folder we can read: the usual route decides
        log.info("captioner graphs not built from the saved weights (%s)", exc)
        return False
    if why:
        log.info("captioner graphs not built from the saved weights: %s", why)
        return False
    bits = fo.ORT_PRECISIONS[prec]
    key = fo.cache_key(source, None, bits)
    assert key is not None
    meta = {"bits": bits, "head_bits": fo.head_bits(bits), "dims": fo.decoder_dims(stub).__dict__,
            "generation": generation_meta(stub),  # type: ignore[arg-type]
            "n_image_tokens": (config.encoder.image_size // config.encoder.patch_size) ** 2 + 1}
    return build_in_children(source, fo.cache_root() / "ort-captioner" / key, bits, meta,
                             {"encoder": config.encoder.to_dict(), "decoder": config.decoder.to_dict()})


def main(argv: list[str] | None = None) -> int:
    """Child entry: build one part, print ``BUILD_JSON {"peak_mb": ...}``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4 or args[2] not in PARTS:
        print("usage: python -m assist.describe.fast.onnx_build MODEL_DIR OUT_DIR {tables,encoder,decoder} BITS",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    build_part(Path(args[0]), Path(args[1]), args[2], int(args[3]))
    print("BUILD_JSON " + json.dumps({"peak_mb": round(_peak_mb(), 1), "part": args[2]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
