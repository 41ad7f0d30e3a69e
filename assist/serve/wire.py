"""The pipe protocol between the server (``.venv-serve``, numpy 1) and a model host
(the agent's environment, numpy 2).

A message is a JSON header and raw byte blobs: 4 bytes big-endian header length,
the header (UTF-8 JSON with a ``blobs`` list of sizes), then the blobs. Arrays
travel as ``{"dtype", "shape"}`` plus their raw bytes, never pickled: a numpy 2
pickle does not load under numpy 1. Standard library and numpy only.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import numpy as np

_LEN = struct.Struct(">I")
MAX_HEADER = 1 << 20


class WireClosed(EOFError):
    """The other end closed the pipe (it exited)."""


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks: list[bytes] = []
    left = n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise WireClosed("pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(stream: BinaryIO, header: dict[str, Any], blobs: list[bytes] | tuple[bytes, ...] = ()) -> None:
    """Write one message and flush."""
    head = dict(header, blobs=[len(b) for b in blobs])
    raw = json.dumps(head).encode()
    stream.write(_LEN.pack(len(raw)) + raw)
    for blob in blobs:
        stream.write(blob)
    stream.flush()


def recv(stream: BinaryIO) -> tuple[dict[str, Any], list[bytes]]:
    """Read one message; WireClosed when the other end has gone."""
    (n,) = _LEN.unpack(_read_exact(stream, _LEN.size))
    if n > MAX_HEADER:
        raise ValueError(f"wire header of {n} bytes: not our protocol")
    header = json.loads(_read_exact(stream, n))
    blobs = [_read_exact(stream, size) for size in header.pop("blobs", [])]
    return header, blobs


def pack_array(a: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """(meta, raw bytes) of a numeric array."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape)}, a.tobytes()


def unpack_array(meta: dict[str, Any], blob: bytes) -> np.ndarray:
    """The array that :func:`pack_array` packed (a writable copy)."""
    return np.frombuffer(blob, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"]).copy()
