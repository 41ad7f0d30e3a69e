"""Test-only launcher: run the real command line with faults injected at the seams.

Run as a child process by the reliability and signal tests::

    python tests/fault_launcher.py [FAULT OPTIONS] -- RUN.PY ARGUMENTS

It passes its faults in through the run's seams (:class:`assist.runtime.options.RunSeams`:
the detector and caption-engine factories each worker calls in its own thread, and
the speech backend factory, whose backends start every engine child through the
``spawn`` function they are given), then calls :func:`assist.app.cli.main` exactly
as ``run.py`` does. Nothing is patched: everything here wraps, from the outside,
the real objects (the real detector, the real caption engine, real espeak-ng
children).

Fault specs (``KIND``, ``KIND:N`` or ``KIND:N@SKIP``; N = how many calls are
faulty, counted over the whole run, across worker restarts, default 1,
``always`` = every call; SKIP = healthy calls before the first faulty one):

* ``--caption-fault`` / ``--detector-fault``: ``raise`` (the model call raises),
  ``hang`` (the call blocks far past its ``*.deadline_s``), ``slow_load:S``
  (building the model takes S more seconds; N is then the number of slow loads).
* ``--speech-fault``: ``die`` (the espeak-ng child speaking is SIGKILLed a moment
  after it starts), ``hang`` (it is SIGSTOPped: a wedged engine that never ends).

``--marker PATH``: a line is appended there when a fault fires (``caption-raise 1``,
``detector-slow_load 1`` ...), so a test can act while the child is in that state.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HANG_S = 3600.0  # "forever" for a test: far past any deadline, yet the thread is a daemon


class FaultError(RuntimeError):
    """The injected model failure (its message names it, so logs show where it came from)."""


class Fault:
    """One parsed fault spec: its kind, how many calls it hits and its argument."""

    def __init__(self, spec: str, marker: Path | None, where: str) -> None:
        kind, _, rest = spec.partition(":")
        arg, _, skip = rest.partition("@")
        self.kind = kind
        self.where = where
        self.marker = marker
        self.always = arg == "always"
        self.seconds = float(arg) if kind == "slow_load" and arg else 0.0
        self.limit = 10**9 if self.always else (1 if not arg or kind == "slow_load" else int(arg))
        self.skip = int(skip) if skip else 0  # healthy calls before the first faulty one
        self.calls = 0
        self.fired = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True when this call is to be faulty (and records it in the marker file)."""
        with self._lock:
            self.calls += 1
            if self.calls <= self.skip or self.fired >= self.limit:
                return False
            self.fired += 1
            n = self.fired
        if self.marker is not None:
            with open(self.marker, "a", encoding="utf-8") as fh:
                fh.write(f"{self.where}-{self.kind} {n} {time.monotonic():.3f}\n")
        return True


def _faulty_call(fault: Fault, real: Any) -> Any:
    """Wrap a model call: raise or hang while the fault has calls left, else call ``real``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if fault.kind in ("raise", "hang") and fault.take():
            if fault.kind == "raise":
                raise FaultError(f"injected {fault.where} failure #{fault.fired}")
            threading.Event().wait(HANG_S)  # a call that never returns in time
        return real(*args, **kwargs)

    return call


class FaultyModel:
    """The real model with one method made faulty; everything else is the real model's."""

    def __init__(self, model: Any, method: str, fault: Fault) -> None:
        self._model = model
        self._faulty = {method: _faulty_call(fault, getattr(model, method))}

    def __getattr__(self, name: str) -> Any:
        if name in self._faulty:
            return self._faulty[name]
        return getattr(self._model, name)


def _faulty_factory(real: Any, method: str, fault: Fault | None) -> Any:
    """A model factory that delays the load (slow_load) and makes ``<model>.<method>`` faulty."""
    if fault is None:
        return None

    def make(*args: Any) -> Any:
        if fault.kind == "slow_load" and fault.take():
            time.sleep(fault.seconds)
        return FaultyModel(real(*args), method, fault)

    return make


def faulty_spawn(fault: Fault) -> Any:
    """A spawn function whose espeak-ng children die (SIGKILL) or hang (SIGSTOP) mid-utterance.

    The probe and voice check are left alone: only a child fed text on stdin
    (``--stdin``) is an utterance.
    """
    from assist.speech.backends.process import spawn as real_spawn

    def spawn(args: list[str], **kwargs: Any) -> Any:
        proc = real_spawn(args, **kwargs)
        if "--stdin" in args and fault.take():
            sig = signal.SIGKILL if fault.kind == "die" else signal.SIGSTOP

            def strike() -> None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

            # A moment after it starts: mid-utterance, as a crashing engine would.
            timer = threading.Timer(0.15, strike)
            timer.daemon = True
            timer.start()
        return proc

    return spawn


def fault_seams(caption: Fault | None, detector: Fault | None, speech: Fault | None) -> Any:
    """The run's seams with the faults in them (None everywhere else: the real parts)."""
    from assist.runtime.options import RunSeams
    from assist.runtime.run import load_describer, load_detector
    from assist.speech.backends import make_backend

    backend_factory = None
    if speech is not None:
        spawn = faulty_spawn(speech)

        def backend_factory(cfg: Any, events: Any, wav_dir: Any) -> Any:
            return make_backend(cfg, events, wav_dir=wav_dir, spawn=spawn)

    return RunSeams(detector_factory=_faulty_factory(load_detector, "detect", detector),
                    describer_factory=_faulty_factory(load_describer, "describe", caption),
                    speech_backend_factory=backend_factory)


def main(argv: list[str] | None = None) -> int:
    """Parse the fault options and run ``assist.app.cli.main`` with the rest, faults in its seams."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        cut = argv.index("--")
        own, rest = argv[:cut], argv[cut + 1:]
    else:
        own, rest = argv, []
    p = argparse.ArgumentParser(prog="fault_launcher.py")
    p.add_argument("--caption-fault")
    p.add_argument("--detector-fault")
    p.add_argument("--speech-fault")
    p.add_argument("--marker", type=Path)
    a = p.parse_args(own)
    seams = fault_seams(Fault(a.caption_fault, a.marker, "caption") if a.caption_fault else None,
                        Fault(a.detector_fault, a.marker, "detector") if a.detector_fault else None,
                        Fault(a.speech_fault, a.marker, "speech") if a.speech_fault else None)
    from assist.app.cli import main as cli_main

    return cli_main(rest, seams=seams)


if __name__ == "__main__":
    code = main()
    # Exactly as run.py ends: flushed, then no slow interpreter teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
