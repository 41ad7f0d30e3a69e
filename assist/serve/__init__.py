"""Serving the agent's models with a Triton Inference Server (issue 18).

Two routes, one protocol (KServe v2 over HTTP and gRPC):

* production: NVIDIA's Triton container with the ONNX Runtime or OpenVINO
  backend serving a model repository that :mod:`assist.serve.export` writes;
* test and small sites: ``make serve``, a real ``tritonserver`` started by
  PyTriton (:mod:`assist.serve.server`) in its own environment ``.venv-serve``
  (PyTriton needs ``numpy<2``; the agent uses numpy 2), whose model functions
  forward to model hosts (:mod:`assist.serve.host`) running the project's own
  code in the main environment.

The agent is a client: a model reference ``http://host:port/name`` or
``grpc://host:port/name`` in ``hazards.model`` / ``ASSIST_DETECTOR`` or
``caption.model`` / ``ASSIST_CAPTIONER`` names a served model.

This module is imported by the server under ``.venv-serve``: standard library
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DETECTOR_MODEL = "detector"
CAPTIONER_MODEL = "captioner"
# KServe v2 tensor names: the detector's are those of an ultralytics ONNX export,
# so the same client code reads our server and an exported model repository.
DETECTOR_INPUT, DETECTOR_OUTPUT = "images", "output0"
CAPTIONER_INPUT, CAPTIONER_OUTPUT = "image", "caption"
SCHEMES = ("http", "grpc")


@dataclass(frozen=True)
class ModelURL:
    """A served model: ``scheme://netloc/name``."""

    scheme: str  # "http" | "grpc"
    netloc: str  # host:port
    name: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}/{self.name}"

    @property
    def host(self) -> str:
        """The host part of ``netloc``."""
        return self.netloc.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of ``netloc`` (8000 for HTTP and 8001 for gRPC when absent: Triton's defaults)."""
        if ":" in self.netloc.rsplit("]", 1)[-1]:
            return int(self.netloc.rsplit(":", 1)[1])
        return 8000 if self.scheme == "http" else 8001


def is_remote(ref: str | None) -> bool:
    """True when a model reference names a served model (``http://`` or ``grpc://``)."""
    return bool(ref) and str(ref).strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def parse_model_url(ref: str) -> ModelURL:
    """``http://host:port/name`` or ``grpc://host:port/name`` -> ModelURL; ValueError saying what is wrong."""
    parts = urlsplit(ref.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"{ref}: a served model is http://HOST:PORT/NAME or grpc://HOST:PORT/NAME")
    name = parts.path.strip("/").split("/", 1)[0]
    if not parts.netloc or not name:
        raise ValueError(f"{ref}: needs a host and a model name, e.g. {scheme}://127.0.0.1:"
                         f"{8000 if scheme == 'http' else 8001}/detector")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{ref}: the port is not a number") from None
    del port
    return ModelURL(scheme, parts.netloc, name)
