"""A model host: one served model running the project's own code, in the agent's
environment, behind a pipe to the server (:mod:`assist.serve.server`).

Why a separate process: PyTriton needs numpy<2 and the agent's stack (torch,
OpenCV 5, ultralytics) numpy 2, so the server and the models cannot share an
interpreter. The hop costs one copy of the request through a pipe (a 320x320
detector input is 1.2 MB: well under a millisecond) and buys the exact local
code path: the detector is ultralytics' ``AutoBackend`` on the same weights the
agent loads (any format it loads), the captioner is :func:`load_captioner` with
the fast decoding path, so served and local results are the same.

Protocol (:mod:`assist.serve.wire`): the host answers ``{"ready": ...}`` once
loaded (or ``{"error": ...}`` and exits 4), then one reply per request. Its
stdout is the protocol; everything any library prints goes to stderr.

    python -m assist.serve.host detector WEIGHTS [--device cpu|cuda]
    python -m assist.serve.host captioner FOLDER [--config config.toml]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, BinaryIO

import numpy as np

from assist.serve import wire

log = logging.getLogger("assist.serve.host")


def _literal(value: Any) -> Any:
    """``value`` reduced to what ``ast.literal_eval`` reads back (ultralytics parses the metadata string so)."""
    if isinstance(value, dict):
        return {(k if isinstance(k, (int, str)) else str(k)): _literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


class DetectorHost:
    """Raw YOLO network outputs for preprocessed batches (N, 3, H, W) float32 in 0..1.

    Non-maximum suppression stays in the client, as for any Triton-served YOLO:
    ultralytics' ``TritonRemoteModel`` expects the raw ``output0``.
    """

    def __init__(self, weights: str, device: str = "cpu") -> None:
        import torch
        from ultralytics.nn.autobackend import AutoBackend

        from assist.core.device import pick_device

        self.device = pick_device(device, "--device")
        self.model = AutoBackend(weights, device=torch.device(self.device), fp16=False, verbose=False)
        meta = dict(getattr(self.model, "metadata", None) or {})
        imgsz = meta.get("imgsz") or getattr(self.model, "imgsz", None) or [640, 640]
        if isinstance(imgsz, int):
            imgsz = [imgsz, imgsz]
        meta.update(task=meta.get("task", "detect"), stride=int(meta.get("stride", getattr(self.model, "stride", 32))),
                    imgsz=[int(v) for v in imgsz], names=dict(self.model.names))
        self.metadata: dict[str, Any] = _literal(meta)
        self.dynamic = bool((meta.get("args") or {}).get("dynamic", False)) or weights.endswith(".pt")
        self.input_shape = [3, -1, -1] if self.dynamic else [3, *self.metadata["imgsz"]]
        self.torch = torch
        out = self.infer(np.zeros((1, 3, *self.metadata["imgsz"]), dtype=np.float32))  # warm-up and output shape
        self.output_shape = [-1] * (out.ndim - 1)

    def info(self) -> dict[str, Any]:
        """What the server needs for the model config (metadata as ultralytics reads it, tensor shapes)."""
        return {"metadata": repr(self.metadata), "input_shape": self.input_shape, "output_shape": self.output_shape,
                "device": self.device}

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Raw network output for a batch."""
        with self.torch.inference_mode():
            y = self.model(self.torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device))
        if isinstance(y, (list, tuple)):
            y = y[0]
        return y.float().cpu().numpy() if hasattr(y, "cpu") else np.asarray(y, dtype=np.float32)

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """One request: an array in, the raw output out."""
        meta, blob = wire.pack_array(self.infer(wire.unpack_array(header["array"], blobs[0])))
        return {"ok": True, "array": meta}, [blob]


class CaptionerHost:
    """Raw captions for encoded images (JPEG/PNG bytes), by the project's captioner.

    The client cleans and grounds the caption (CaptionEngine), exactly as for a
    local model; the host only generates.
    """

    def __init__(self, folder: str, config_path: str | None = None) -> None:
        from assist.config import DEFAULT_CONFIG_PATH, load_config
        from assist.describe.captioner import load_captioner

        cfg = load_config(config_path or str(DEFAULT_CONFIG_PATH))
        self.captioner = load_captioner(cfg.caption, folder)
        self.captioner.caption(np.full((64, 64, 3), 128, np.uint8))  # warm-up: builds graphs before "ready"

    def info(self) -> dict[str, Any]:
        """Device and decoding backend, for the server's log."""
        return {"device": str(self.captioner.device), "backend": str(self.captioner.backend)}

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """One request: N encoded images in, N raw captions out (UTF-8)."""
        import cv2

        images = []
        for i, blob in enumerate(blobs):
            img = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                return {"ok": False, "error": f"image {i}: not a decodable image ({len(blob)} bytes)"}, []
            images.append(img)
        captions = self.captioner.caption_batch(images)
        return {"ok": True}, [c.encode("utf-8") for c in captions]


def serve(model: Any, proto_in: BinaryIO, proto_out: BinaryIO) -> None:
    """Answer requests until the server closes the pipe."""
    wire.send(proto_out, {"ready": True, **model.info()})
    while True:
        try:
            header, blobs = wire.recv(proto_in)
        except wire.WireClosed:
            return
        try:
            reply, out = model.handle(header, blobs)
        except Exception as exc:  # noqa: BLE001 - the request fails, the host lives on
            log.warning("request failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            reply, out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
        wire.send(proto_out, reply, out)


def main(argv: list[str] | None = None) -> int:
    """Load one model and serve it over stdin/stdout."""
    p = argparse.ArgumentParser(prog="python -m assist.serve.host")
    p.add_argument("kind", choices=("detector", "captioner"))
    p.add_argument("weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"host[{args.kind}] %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # The protocol owns the original stdout; anything printed later (by us or a library, even
    # from C) lands on stderr instead of corrupting it.
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    try:
        model: Any = (DetectorHost(args.weights, args.device) if args.kind == "detector"
                      else CaptionerHost(args.weights, args.config))
    except Exception as exc:  # noqa: BLE001 - reported to the server, which names the model and stops
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        wire.send(proto_out, {"ready": False, "error": f"{args.weights}: cannot load ({first[:300]})"})
        return 4
    serve(model, proto_in, proto_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
