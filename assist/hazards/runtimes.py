"""Which package runs which detector format, and the one line that says so.

ultralytics loads every export format through a runtime that is imported only
when such a file is loaded; a missing one surfaced as "No module named
'ai_edge_litert'", which tells a user neither what to install nor that this
project has an extra for it. The agent also sets ``YOLO_AUTOINSTALL=False``
(in the CLI): ultralytics would otherwise ``pip install`` into the user's
environment in the middle of a run, and hang offline.

The table maps the module ultralytics imports to (format, pip package, this
project's optional extra or None where the runtime does not install from PyPI
on an ordinary machine: TensorRT, CoreML off macOS, vendor NPUs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    """The runtime of one export format."""

    fmt: str
    package: str
    extra: str | None


# module name (ModuleNotFoundError.name, top level) -> runtime
RUNTIMES: dict[str, Runtime] = {
    "ai_edge_litert": Runtime("TFLite", "ai-edge-litert", "tflite"),
    "tflite_runtime": Runtime("TFLite", "ai-edge-litert", "tflite"),
    "tensorflow": Runtime("TensorFlow SavedModel/GraphDef", "tensorflow", None),
    "onnxruntime": Runtime("ONNX", "onnxruntime", "onnx"),
    "onnx": Runtime("ONNX", "onnx", "onnx"),
    "openvino": Runtime("OpenVINO", "openvino", "openvino"),
    "ncnn": Runtime("NCNN", "ncnn", "ncnn"),
    "MNN": Runtime("MNN", "MNN", "mnn"),
    "tensorrt": Runtime("TensorRT engine", "tensorrt", None),
    "coremltools": Runtime("CoreML", "coremltools", None),
    "paddle": Runtime("PaddlePaddle", "paddlepaddle", None),
    "executorch": Runtime("ExecuTorch", "executorch", None),
    "tritonclient": Runtime("Triton", "tritonclient[all]", None),
    "rknnlite": Runtime("RKNN", "rknn-toolkit-lite2", None),
}


def runtime_for(exc: BaseException) -> Runtime | None:
    """The runtime a ModuleNotFoundError is about, or None when it is not a known detector runtime."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    return RUNTIMES.get(exc.name.split(".", 1)[0])


def missing_runtime_message(model: str, exc: BaseException) -> str | None:
    """One line naming the package (and the project's extra) to install, or None."""
    rt = runtime_for(exc)
    if rt is None:
        return None
    how = f"pip install {rt.package}"
    if rt.extra:
        how += f" (or this project's extra: pip install -e \".[{rt.extra}]\")"
    return f"detector {model}: the {rt.fmt} runtime is not installed; {how}, or use another format"
