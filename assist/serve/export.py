"""Write a Triton model repository for NVIDIA's Triton Inference Server container.

    python -m assist.serve.export --out model_repository [--format openvino|onnx] [--max-batch 8]

takes the detector the agent would use (``ASSIST_DETECTOR`` / ``hazards.model``)
and writes ``OUT/detector/config.pbtxt`` and ``OUT/detector/1/model.*``:

* ``--format openvino`` (default for an OpenVINO folder): ``model.xml`` +
  ``model.bin`` for Triton's ``openvino`` backend (CPU servers, Intel GPUs);
* ``--format onnx`` (default for an ``.onnx`` file; a ``.pt`` is exported by
  ultralytics, with a dynamic batch): ``model.onnx`` for the ``onnxruntime``
  backend (CPU or CUDA; TensorRT as an ORT execution accelerator on a GPU box).

The config carries ``parameters { key: "metadata" ... }``: the model's own
metadata as a dict literal (class names, input size, stride, whether NMS is in
the graph), which ultralytics' Triton client reads, so the agent loads the
served model with ``grpc://host:8001/detector`` and gets the same detections.
Tensors are named ``images`` and ``output0`` (an ultralytics ONNX export's
names). A static-batch model is served with ``max_batch_size: 0``; a dynamic one
with ``max_batch_size`` and dynamic batching (several cameras in one batch: what
pays on a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from assist.serve import DETECTOR_INPUT, DETECTOR_MODEL, DETECTOR_OUTPUT
from assist.serve.host import _literal


class ExportError(Exception):
    """The detector cannot be exported; the message says why and what to do."""


def _pbtxt_string(s: str) -> str:
    """A protobuf text-format string literal."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


def model_config(*, backend: str, input_dims: list[int], output_dims: list[int], metadata: dict[str, Any],
                 max_batch: int, instances: int = 1, dtype: str = "TYPE_FP32", kind: str = "KIND_AUTO") -> str:
    """config.pbtxt text. ``max_batch`` 0 means a static model: dims include the batch dimension."""
    lines = [f'name: "{DETECTOR_MODEL}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}",
             f'input [ {{ name: "{DETECTOR_INPUT}" data_type: {dtype} dims: {input_dims} }} ]',
             f'output [ {{ name: "{DETECTOR_OUTPUT}" data_type: TYPE_FP32 dims: {output_dims} }} ]',
             f"instance_group [ {{ count: {instances} kind: {kind} }} ]"]
    if max_batch > 0:
        lines.append("dynamic_batching { max_queue_delay_microseconds: 2000 }")
    lines.append(f'parameters {{ key: "metadata" value {{ string_value: {_pbtxt_string(repr(_literal(metadata)))} }} }}')
    return "\n".join(lines) + "\n"


def _dims(shape: Any) -> list[int]:
    return [int(d) if isinstance(d, int) or str(d).lstrip("-").isdigit() else -1 for d in shape]


def _metadata_yaml(folder: Path) -> dict[str, Any]:
    import yaml

    f = folder / "metadata.yaml"
    if not f.is_file():
        raise ExportError(f"{folder}: no metadata.yaml (class names, input size); re-export it with ultralytics")
    return dict(yaml.safe_load(f.read_text()))


def export_openvino(src: Path, out: Path, instances: int) -> Path:
    """An OpenVINO folder -> OUT/detector with model.xml/.bin (tensors renamed), config for the openvino backend."""
    import openvino as ov

    xmls = sorted(src.glob("*.xml"))
    if not xmls:
        raise ExportError(f"{src}: no OpenVINO .xml model in this folder")
    model = ov.Core().read_model(str(xmls[0]))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{src}: expected one input and one output (a YOLO detector), got "
                          f"{len(model.inputs)} and {len(model.outputs)}")
    model.inputs[0].get_tensor().set_names({DETECTOR_INPUT})
    model.outputs[0].get_tensor().set_names({DETECTOR_OUTPUT})
    version = out / DETECTOR_MODEL / "1"
    version.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(version / "model.xml"), compress_to_fp16=False)
    in_shape, out_shape = model.inputs[0].get_partial_shape(), model.outputs[0].get_partial_shape()
    dynamic_batch = in_shape[0].is_dynamic
    in_dims = _dims([d.get_length() if d.is_static else -1 for d in in_shape])
    out_dims = _dims([d.get_length() if d.is_static else -1 for d in out_shape])
    max_batch = 8 if dynamic_batch else 0
    if max_batch:
        in_dims, out_dims = in_dims[1:], out_dims[1:]
    text = model_config(backend="openvino", input_dims=in_dims, output_dims=out_dims,
                        metadata=_metadata_yaml(src), max_batch=max_batch, instances=instances,
                        kind="KIND_CPU")  # Triton's openvino backend runs on CPU instances
    (out / DETECTOR_MODEL / "config.pbtxt").write_text(text)
    return out / DETECTOR_MODEL


def export_onnx(src: Path, out: Path, instances: int) -> Path:
    """An .onnx file (or a .pt exported to one) -> OUT/detector with model.onnx, config for onnxruntime."""
    import ast

    import onnx

    if src.suffix == ".pt":
        from ultralytics import YOLO

        src = Path(YOLO(str(src), task="detect").export(format="onnx", dynamic=True, simplify=False))
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(f"{src}: expected one input and one output (a YOLO detector)")
    meta = {p.key: p.value for p in model.metadata_props}
    if "names" not in meta:
        raise ExportError(f"{src}: no ultralytics metadata (class names) in the ONNX file; export it with ultralytics")
    metadata = {k: (ast.literal_eval(v) if k in ("names", "imgsz", "args", "kpt_shape") else v) for k, v in meta.items()}
    old_in, old_out = inputs[0].name, graph.output[0].name
    for node in graph.node:
        node.input[:] = [DETECTOR_INPUT if n == old_in else n for n in node.input]
        node.output[:] = [DETECTOR_OUTPUT if n == old_out else n for n in node.output]
    inputs[0].name, graph.output[0].name = DETECTOR_INPUT, DETECTOR_OUTPUT

    def dims(value_info: Any) -> list[int]:
        return [d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim]

    in_dims, out_dims = dims(inputs[0]), dims(graph.output[0])
    max_batch = 8 if in_dims[0] == -1 else 0
    if max_batch:
        in_dims, out_dims = in_dims[1:], out_dims[1:]
    version = out / DETECTOR_MODEL / "1"
    version.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(version / "model.onnx"))
    text = model_config(backend="onnxruntime", input_dims=in_dims, output_dims=out_dims, metadata=metadata,
                        max_batch=max_batch, instances=instances)
    (out / DETECTOR_MODEL / "config.pbtxt").write_text(text)
    return out / DETECTOR_MODEL


def export(src: str, out: Path, fmt: str | None = None, instances: int = 1) -> Path:
    """Export ``src`` (a detector path) into the repository ``out``; the model folder written."""
    p = Path(src)
    if not p.exists():
        raise ExportError(f"{src}: no such detector weights")
    fmt = fmt or ("openvino" if p.is_dir() else "onnx")
    if fmt == "openvino":
        if not p.is_dir():
            raise ExportError(f"{src}: --format openvino needs an OpenVINO folder (ultralytics export format=openvino)")
        return export_openvino(p, out, instances)
    if p.is_dir():
        raise ExportError(f"{src}: --format onnx needs an .onnx or .pt file; this OpenVINO folder exports with "
                          "--format openvino")
    return export_onnx(p, out, instances)


def main(argv: list[str] | None = None) -> int:
    """Export the agent's detector; exit 0, 4 when it cannot be found or exported."""
    ap = argparse.ArgumentParser(prog="python -m assist.serve.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="model repository folder (created)")
    ap.add_argument("--format", choices=("openvino", "onnx"), default=None)
    ap.add_argument("--instances", type=int, default=1, help="model instances per device (instance_group count)")
    ap.add_argument("--config", default=None)
    args = ap.parse_args(argv)
    from assist.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
    from assist.hazards.detector import DetectorModelMissing, require_detector
    from assist.serve import is_remote

    try:
        cfg = load_config(args.config or str(DEFAULT_CONFIG_PATH))
        ref = os.environ.get("ASSIST_DETECTOR") or cfg.hazards.model
        if is_remote(ref):
            raise ExportError(f"{ref} is a served model; point ASSIST_DETECTOR at local weights to export them")
        folder = export(require_detector(cfg.hazards), args.out, args.format, args.instances)
    except ConfigError as exc:
        print(f"error: config: {'; '.join(exc.problems)}", file=sys.stderr)
        return 2
    except (ExportError, DetectorModelMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    print(f"wrote {folder} ({', '.join(sorted(str(f.relative_to(args.out)) for f in folder.rglob('*') if f.is_file()))})")
    print(f"serve it: docker run --rm -p8000:8000 -p8001:8001 -p8002:8002 -v {args.out.resolve()}:/models "
          "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
