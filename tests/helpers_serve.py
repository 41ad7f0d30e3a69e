"""A real model server (``python -m assist.serve.launch``: PyTriton's tritonserver) on loopback for tests.

Only 127.0.0.1, bounded in time, stopped by its process id (SIGTERM, then
SIGKILL of its process group: tritonserver and the model hosts are in it).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 240.0  # a cold start on a loaded 2-core machine: imports, model load, tritonserver


def free_port_triple() -> int:
    """A port P with P, P+1 and P+2 free on 127.0.0.1 (HTTP, gRPC, metrics)."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        socks = []
        try:
            for p in (port, port + 1, port + 2):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port triple on 127.0.0.1")


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """``python -m assist.serve.launch`` in its own session; its output is collected line by line."""

    def __init__(self, port: int, *, detector: str, captioner: str | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = port
        env = dict(os.environ, ASSIST_DETECTOR=detector, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        env.pop("ASSIST_CAPTIONER", None)
        if captioner:
            env["ASSIST_CAPTIONER"] = captioner
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "assist.serve.launch", "--host", "127.0.0.1", "--port", str(port),
               *([] if captioner else ["--no-captioner"])]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            # "containing ready": tritonserver writes to the same stream, so under load its
            # start-up table can be printed on the same line, around the launcher's ready line.
            if "ready: " in line:
                self.ready.set()

    @property
    def output(self) -> str:
        """Everything the server printed so far."""
        return "".join(self.lines)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the server prints its ready line; AssertionError with its output otherwise."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server not ready (exit {self.proc.returncode}):\n{self.output[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server process only (a crash): its tritonserver and hosts follow (parent-death signal)."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM by pid, wait; then SIGKILL the whole process group. Returns the seconds it took."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        elapsed = time.monotonic() - t0
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(5)
        self._reader.join(2)
        return elapsed

    def wait_ports_closed(self, timeout: float = 20.0) -> bool:
        """After a kill: wait until nothing listens on the server's ports (tritonserver has exited)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(port_open(p) for p in (self.port, self.port + 1)):
                return True
            time.sleep(0.2)
        return False
