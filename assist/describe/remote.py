"""The captioner served by a Triton Inference Server: ``caption.model`` /
``ASSIST_CAPTIONER`` = ``http://host:port/captioner`` or ``grpc://host:port/captioner``.

A small tritonclient client with the local :class:`~assist.captioner.Captioner`'s
interface (``caption``, ``caption_batch``, ``path``, ``device``, ``backend``), so
the caption engine cleans and grounds a served caption exactly as a local one.
The frame travels as JPEG (quality 90: about 50 kB for 640x480 instead of 900 kB
raw; the captioner sees it at 224x224); the caption comes back as UTF-8 text.

Failures raise :class:`~assist.serve.client.RemoteModelUnavailable` at once (a
refused connection fails in milliseconds; a hung server is cut by the request
timeout, ``caption.deadline_s``), so the caption worker says "Descriptions
unavailable", reconnects with back-off and says "Descriptions back".
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from assist.serve import CAPTIONER_INPUT, CAPTIONER_OUTPUT, parse_model_url
from assist.serve.client import RemoteModelUnavailable, connect, describe_failure

JPEG_QUALITY = 90


class RemoteCaptioner:
    """Raw captions from a served captioner. One per owning thread, like a local model."""

    def __init__(self, ref: str, cfg: Any, *, stop: threading.Event | None = None) -> None:
        self.url = parse_model_url(ref)
        self.path = str(self.url)
        self.device = "remote"
        self.dtype = "served"
        self.backend = "triton"
        self.timeout_s = float(getattr(cfg, "deadline_s", 20.0))
        config = connect(self.path, stop)
        names = {t.get("name") for t in config.get("input", [])}
        if CAPTIONER_INPUT not in names:
            raise RemoteModelUnavailable(f"{self.path}: the served model has no {CAPTIONER_INPUT!r} input "
                                         f"(inputs: {', '.join(sorted(filter(None, names))) or 'none'}); "
                                         "is it a captioner served by make serve?")
        if self.url.scheme == "http":
            import tritonclient.http as client

            self._client = client.InferenceServerClient(url=self.url.netloc, connection_timeout=self.timeout_s,
                                                        network_timeout=self.timeout_s)
        else:
            import tritonclient.grpc as client  # type: ignore[no-redef]

            self._client = client.InferenceServerClient(url=self.url.netloc)
        self._mod = client

    def _encode(self, image_bgr: np.ndarray) -> bytes:
        import cv2

        if image_bgr is None or not isinstance(image_bgr, np.ndarray) or image_bgr.size == 0:
            raise ValueError("caption input must be a non-empty image array")
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"cannot encode an image of shape {image_bgr.shape} as JPEG")
        return buf.tobytes()

    def caption_batch(self, images_bgr: Sequence[np.ndarray]) -> list[str]:
        """Raw captions for a batch of BGR images (one request; the server may batch across clients too)."""
        if not images_bgr:
            return []
        data = np.array([[self._encode(img)] for img in images_bgr], dtype=object)
        inp = self._mod.InferInput(CAPTIONER_INPUT, list(data.shape), "BYTES")
        inp.set_data_from_numpy(data)
        out = self._mod.InferRequestedOutput(CAPTIONER_OUTPUT)
        try:
            if self.url.scheme == "grpc":
                res = self._client.infer(self.url.name, [inp], outputs=[out], client_timeout=self.timeout_s)
            else:
                res = self._client.infer(self.url.name, [inp], outputs=[out])
            captions = res.as_numpy(CAPTIONER_OUTPUT)
        except Exception as exc:  # noqa: BLE001 - any transport or server error: one line, the worker reconnects
            raise RemoteModelUnavailable(describe_failure(self.path, exc)) from None
        return [(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)).strip()
                for c in np.asarray(captions).reshape(-1)]

    def caption(self, image_bgr: np.ndarray) -> str:
        """The raw caption of one BGR image."""
        return self.caption_batch([image_bgr])[0]
