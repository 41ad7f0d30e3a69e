"""The model repository for NVIDIA's Triton container (python -m assist.serve.export).

No Triton container runs here, so the test checks what Triton and the agent
read: the config parses as Triton's ModelConfig message, its metadata is what
ultralytics' client reads (class names, input size), and the exported model
file gives the original model's outputs under the configured tensor names.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers_cli import ROOT

pytestmark = pytest.mark.slow  # two exports and a compile of the detector: ~25 s on 2 cores


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, detector_path: Path) -> Path:
    if not detector_path.is_dir():
        pytest.skip("the export test uses the OpenVINO detector folder")
    out = tmp_path_factory.mktemp("repo")
    proc = subprocess.run([sys.executable, "-m", "assist.serve.export", "--out", str(out)], cwd=ROOT, text=True,
                          capture_output=True, timeout=180, env=dict(os.environ, ASSIST_DETECTOR=str(detector_path)))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "tritonserver --model-repository" in proc.stdout
    return out


def test_config_is_a_triton_model_config_with_ultralytics_metadata(repository: Path) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((repository / "detector" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "detector" and config.backend == "openvino"
    assert [i.name for i in config.input] == ["images"] and [o.name for o in config.output] == ["output0"]
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    meta = ast.literal_eval(config.parameters["metadata"].string_value)
    assert len(meta["names"]) == 80 and meta["names"][0] == "person"
    size = list(config.input[0].dims)[-2:]
    assert list(meta["imgsz"]) == size


def test_exported_model_gives_the_original_outputs(repository: Path, detector_path: Path) -> None:
    import openvino as ov

    core = ov.Core()
    exported = core.compile_model(str(repository / "detector" / "1" / "model.xml"), "CPU")
    original = core.compile_model(str(next(detector_path.glob("*.xml"))), "CPU")
    assert "images" in exported.input(0).get_names() and "output0" in exported.output(0).get_names()
    x = np.random.default_rng(0).random(tuple(exported.input(0).shape), dtype=np.float32)
    np.testing.assert_array_equal(exported({"images": x})["output0"], original(x)[original.output(0)])


def test_remote_detector_cannot_be_exported(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "assist.serve.export", "--out", str(tmp_path / "r")], cwd=ROOT,
                          text=True, capture_output=True, timeout=120,
                          env=dict(os.environ, ASSIST_DETECTOR="grpc://127.0.0.1:8001/detector"))
    assert proc.returncode == 4 and "served model" in proc.stderr and "Traceback" not in proc.stderr
