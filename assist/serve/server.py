"""``make serve``: a real Triton Inference Server (PyTriton's bundled
``tritonserver``) serving the agent's detector as ``detector`` and, when given,
its captioner as ``captioner``.

Runs in the server environment ``.venv-serve`` (PyTriton needs numpy<2), so it
imports only the standard library, numpy, PyTriton (and the protobuf and
tritonclient packages PyTriton brings) and the standard-library-only modules
:mod:`assist.serve` and :mod:`assist.serve.wire`. The models themselves run in
model hosts (:mod:`assist.serve.host`) under the agent's environment, one
process per model instance; each Triton instance forwards its batch to its host.

Two details of PyTriton are handled here, both without patching it:

* the detector's model config must carry ``parameters.metadata`` (the model's
  metadata as a dict literal: class names, input size, stride, NMS in graph),
  which ultralytics' Triton client reads; PyTriton's ``ModelConfig`` has no such
  field. With ``TritonLifecyclePolicy(local_model_store=True)`` PyTriton writes
  each model's ``config.pbtxt`` into its workspace when the model is bound and
  Triton loads the repository when it starts, so we add the parameter to that
  file in between, through the protobuf ``ModelConfig`` message;
* Python backend stubs link the running interpreter's ``libpython``; under a
  Python built outside the system packages (pyenv, conda) the system one is
  found first and loading fails with ``'_thread.RLock' object has no attribute
  '_recursion_count'`` (triton-inference-server/pytriton#51). We put this
  interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH`` before Triton starts.

    python -m assist.serve.server --detector WEIGHTS [--captioner FOLDER] --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from assist.serve import (
    CAPTIONER_INPUT,
    CAPTIONER_MODEL,
    CAPTIONER_OUTPUT,
    DETECTOR_INPUT,
    DETECTOR_MODEL,
    DETECTOR_OUTPUT,
    wire,
)

log = logging.getLogger("assist.serve")
ROOT = Path(__file__).resolve().parents[2]
HOST_LOAD_TIMEOUT_S = 600.0  # a first captioner load builds its ONNX graphs (~45 s on 2 cores)
MAX_BATCH = 8


class HostError(RuntimeError):
    """A model host failed to load or died."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The host gets SIGTERM if the server dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - not Linux: the host still exits when its pipe closes
        pass


class ModelHost:
    """One model host process and its pipe; ``call`` is serialised (one request at a time)."""

    def __init__(self, kind: str, argv: list[str], python: str) -> None:
        self.kind = kind
        self.cmd = [python, "-m", "assist.serve.host", kind, *argv]
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("LD_LIBRARY_PATH_SERVE", None)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def wait_ready(self, stop: threading.Event, timeout_s: float = HOST_LOAD_TIMEOUT_S) -> None:
        """Wait for the host's first message; HostError if it failed, exited or took too long."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while not stop.is_set():
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                break
            if self.proc.poll() is not None:
                raise HostError(f"{self.kind} host exited with code {self.proc.returncode} while loading")
            if time.monotonic() > deadline:
                raise HostError(f"{self.kind} host did not load within {timeout_s:g} s")
        else:
            return
        try:
            header, _ = wire.recv(self.proc.stdout)
        except wire.WireClosed:
            raise HostError(f"{self.kind} host exited with code {self.proc.wait()} while loading") from None
        if not header.get("ready"):
            raise HostError(f"{self.kind}: {header.get('error', 'failed to load')}")
        self.info = header

    def call(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """One request and its reply; HostError if the host has gone or the request failed."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            try:
                wire.send(self.proc.stdin, header, blobs)
                reply, out = wire.recv(self.proc.stdout)
            except (wire.WireClosed, BrokenPipeError, OSError) as exc:
                raise HostError(f"{self.kind} host is gone ({type(exc).__name__})") from None
        if not reply.get("ok"):
            raise HostError(f"{self.kind}: {reply.get('error', 'request failed')}")
        return reply, out

    def close(self, timeout_s: float = 2.0) -> None:
        """Close the pipe (the host exits at once), then make sure it did."""
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


def detector_function(host: ModelHost) -> Any:
    """The Triton inference callable of one detector instance: (N, 3, H, W) float32 -> raw (N, ...) output."""
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        meta, blob = wire.pack_array(inputs[DETECTOR_INPUT].astype(np.float32, copy=False))
        reply, out = host.call({"array": meta}, [blob])
        return {DETECTOR_OUTPUT: wire.unpack_array(reply["array"], out[0])}

    return infer


def captioner_function(host: ModelHost) -> Any:
    """The Triton inference callable of one captioner instance: N encoded images -> N captions (UTF-8 bytes)."""
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        images = [bytes(row[0]) for row in inputs[CAPTIONER_INPUT]]
        _, out = host.call({}, images)
        return {CAPTIONER_OUTPUT: np.array([[c] for c in out], dtype=object)}

    return infer


def pbtxt_with_metadata(text: str, metadata: str) -> str:
    """A model config (protobuf text) with ``parameters.metadata`` set, as ultralytics reads it."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    config.parameters["metadata"].string_value = metadata
    out = text_format.MessageToString(config)
    if config.max_batch_size == 0:  # Triton needs it written out; protobuf omits a default 0
        out += "max_batch_size: 0\n"
    return out


def python_libdir_first(env: dict[str, str] | os._Environ[str]) -> None:
    """Put this interpreter's own libpython folder first on LD_LIBRARY_PATH (pytriton#51)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir or not Path(libdir).is_dir():
        return
    parts = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != libdir]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *parts])


def workspace_dir() -> Path:
    """This server's PyTriton workspace (model repository, sockets, a 22 MB copy of tritonserver), in the
    temporary folder; those of servers that were killed (no pid any more) are removed first."""
    base = Path(tempfile.gettempdir())
    for old in base.glob("assist-serve-*"):
        try:
            pid = int(old.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
    path = base / f"assist-serve-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    return path


class Server:
    """The hosts, the Triton server and the bindings; ``start`` then ``stop``."""

    def __init__(self, args: argparse.Namespace, stop: threading.Event) -> None:
        self.args = args
        self.stop_event = stop
        self.hosts: list[ModelHost] = []
        self.triton: Any = None
        self.models: list[str] = []

    def start(self) -> bool:
        """Load the models, start Triton; False when stopped meanwhile. HostError on a model failure."""
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy
        from pytriton.utils.workspace import Workspace

        a = self.args
        python = a.host_python
        det_argv = [a.detector, "--device", a.device]
        detectors = [ModelHost("detector", det_argv, python) for _ in range(a.detector_instances)]
        captioners = ([ModelHost("captioner", [a.captioner, *(["--config", a.config] if a.config else [])], python)
                       for _ in range(a.captioner_instances)] if a.captioner else [])
        self.hosts = detectors + captioners
        for host in self.hosts:
            host.wait_ready(self.stop_event)
            if self.stop_event.is_set():
                return False
        python_libdir_first(os.environ)
        workspace = Workspace(workspace_dir())
        config = TritonConfig(http_address=a.host, http_port=a.port, grpc_address=a.host, grpc_port=a.port + 1,
                              metrics_address=a.host, metrics_port=a.port + 2, exit_timeout_secs=2,
                              log_verbose=1 if a.verbose else 0)
        self.triton = Triton(config=config, workspace=workspace,
                             triton_lifecycle_policy=TritonLifecyclePolicy(launch_triton_on_startup=True,
                                                                           local_model_store=True))
        # Dynamic batching with no queue delay: a request never waits for company, but the
        # requests that queued while an instance was busy (several cameras) go as one batch.
        batching = ModelConfig(batching=True, max_batch_size=MAX_BATCH,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=0))
        info = detectors[0].info
        self.triton.bind(model_name=DETECTOR_MODEL, infer_func=[detector_function(h) for h in detectors],
                         inputs=[Tensor(name=DETECTOR_INPUT, dtype=np.float32, shape=tuple(info["input_shape"]))],
                         outputs=[Tensor(name=DETECTOR_OUTPUT, dtype=np.float32, shape=tuple(info["output_shape"]))],
                         config=batching, strict=False)
        config_path = workspace.model_store_path / DETECTOR_MODEL / "config.pbtxt"
        config_path.write_text(pbtxt_with_metadata(config_path.read_text(), info["metadata"]))
        self.models.append(DETECTOR_MODEL)
        if captioners:
            self.triton.bind(model_name=CAPTIONER_MODEL, infer_func=[captioner_function(h) for h in captioners],
                             inputs=[Tensor(name=CAPTIONER_INPUT, dtype=bytes, shape=(1,))],
                             outputs=[Tensor(name=CAPTIONER_OUTPUT, dtype=bytes, shape=(1,))],
                             config=batching, strict=False)
            self.models.append(CAPTIONER_MODEL)
        self.triton.run()
        return not self.stop_event.is_set()

    def alive(self) -> bool:
        """Triton and every host still running."""
        return (self.triton is not None and self.triton.is_alive()
                and all(h.proc.poll() is None for h in self.hosts))

    def stop(self) -> None:
        """Stop Triton, then the hosts (bounded: a few seconds)."""
        if self.triton is not None:
            try:
                self.triton.stop()
            except Exception:  # noqa: BLE001 - stopping is best effort; the hosts still go
                log.debug("triton stop failed", exc_info=True)
        for host in self.hosts:
            host.close()


def build_parser() -> argparse.ArgumentParser:
    """Flags of the server entry (``make serve`` passes them through assist.serve.launch)."""
    p = argparse.ArgumentParser(prog="python -m assist.serve.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", required=True, help="detector weights (any format ultralytics loads)")
    p.add_argument("--captioner", default=None, help="captioner folder (serve it as 'captioner')")
    p.add_argument("--config", default=None, help="config.toml for the captioner's settings")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port; gRPC is PORT+1, metrics PORT+2")
    p.add_argument("--device", default="cpu", help="detector device: cpu, cuda or auto")
    p.add_argument("--detector-instances", type=int, default=1)
    p.add_argument("--captioner-instances", type=int, default=1)
    p.add_argument("--host-python", default=os.environ.get("ASSIST_HOST_PYTHON", sys.executable),
                   help="the agent environment's python, which runs the models")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; exit 0 when stopped, 4 when a model cannot load, 1 when Triton fails."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="serve %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = Server(args, stop)
    code = 0
    try:
        if server.start():
            a = args
            print(f"ready: {', '.join(server.models)} on http://{a.host}:{a.port} and grpc://{a.host}:{a.port + 1} "
                  f"(metrics http://{a.host}:{a.port + 2}/metrics); Ctrl-C stops", flush=True)
            while not stop.wait(0.2):
                if not server.alive():
                    print("error: the Triton server or a model host exited; stopping", file=sys.stderr, flush=True)
                    code = 1
                    break
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 4
    except Exception as exc:  # noqa: BLE001 - Triton failed to start (a port in use, ...): one line, then stop
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: the Triton server failed to start ({type(exc).__name__}: {first[:300]}); is port "
              f"{args.port}, {args.port + 1} or {args.port + 2} in use? choose another with PORT=", file=sys.stderr,
              flush=True)
        code = 1
    finally:
        server.stop()
    if stop.is_set():
        print("stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
