"""Supervised worker threads: faults are contained, hung calls are abandoned.

A worker owns its model (one model per owning thread: ultralytics and
transformers models are not safe to share across threads). Its loop is
``setup()`` once, then ``step(state)`` until stopped. When ``step`` raises, or
a call wrapped in :meth:`SupervisedWorker.busy` runs past its deadline, the
worker is restarted in a *new* thread with a fresh model, within a restart
budget (default 5 per 60 s); past the budget it backs off before trying again.
A hung thread cannot be killed in Python, so it is abandoned: it is a daemon,
and a generation counter makes it exit quietly if its call ever returns.

Trade-off: an abandoned hung call keeps its memory until it returns; that is
better than a silent agent, and a hang is rare and reported.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


class WorkerStopped(Exception):
    """Raised inside a worker whose generation was replaced (it must exit)."""


class SupervisedWorker:
    """Run ``step(state)`` in a loop in a daemon thread, restarting on faults.

    ``setup`` builds the per-thread state (the model); it runs in the worker's
    own thread. ``on_fault(kind, message)`` is called (from the supervising
    thread) for ``"error"``, ``"hung"`` and ``"gave_up"``; ``on_recovered()``
    after a restarted worker completes a step successfully. For a worker whose
    steps wrap their model calls in :meth:`busy`, that means a step in which a
    model call succeeded: a step that found no frame proves nothing, and
    calling it a recovery would let the next failing call raise a second
    notice for what the user lives as one outage.
    """

    def __init__(self, name: str, setup: Callable[[], Any], step: Callable[[Any], None], *,
                 stop: threading.Event, deadline_s: float, restart_budget: int = 5, window_s: float = 60.0,
                 backoff_s: float = 30.0, on_fault: Callable[[str, str], None] | None = None,
                 on_recovered: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._setup = setup
        self._step = step
        self._stop = stop
        self.deadline_s = deadline_s
        self.restart_budget = restart_budget
        self.window_s = window_s
        self.backoff_s = backoff_s
        self._on_fault = on_fault
        self._on_recovered = on_recovered
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None
        self._restarts: deque[float] = deque()
        self._faulted = False
        self._uses_busy = False  # set once a step wraps a model call in busy()
        self._call_ok = False  # a busy() call of the current generation succeeded since the last fault
        self._retry_at: float | None = None
        self._watchdog: threading.Thread | None = None
        self.ready = threading.Event()  # set once the first setup finished (ok or not)
        self.setup_error: BaseException | None = None
        self.faults = 0
        self.restarts = 0
        self.steps = 0

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread and its watchdog."""
        self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True)
        self._watchdog.start()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the current thread to end; True if it did."""
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._watchdog is not None:
            self._watchdog.join(max(0.0, deadline - time.monotonic()))
        return thread is None or not thread.is_alive()

    @property
    def alive(self) -> bool:
        """True while the current worker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_busy(self) -> bool:
        """True while a model call wrapped in :meth:`busy` runs."""
        return self._busy_since is not None

    # -- used by step functions -----------------------------------------
    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Wrap one model call: the watchdog abandons the thread past the deadline."""
        gen = self._generation_of_current()
        with self._lock:
            self._busy_since = self._clock()
            self._uses_busy = True
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._lock:
                if gen == self._generation:
                    self._busy_since = None
                    if ok:
                        self._call_ok = True
        if gen != self._generation:
            raise WorkerStopped(self.name)

    # -- internals -------------------------------------------------------
    def _generation_of_current(self) -> int:
        return getattr(threading.current_thread(), "assist_generation", self._generation)

    def _spawn(self) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
            self._busy_since = None
        thread = threading.Thread(target=self._run, args=(gen,), name=f"{self.name}-{gen}", daemon=True)
        thread.assist_generation = gen  # type: ignore[attr-defined]
        self._thread = thread
        thread.start()

    def _run(self, gen: int) -> None:
        try:
            state = self._setup()
        except Exception as exc:  # noqa: BLE001 - reported, then restarted by the watchdog
            if gen == 1:
                self.setup_error = exc
                self.ready.set()
                return
            self._fault(gen, "error", f"{self.name} failed to start: {exc}")
            return
        self.ready.set()
        while not self._stop.is_set() and gen == self._generation:
            try:
                self._step(state)
            except WorkerStopped:
                return
            except Exception as exc:  # noqa: BLE001 - contained: the other half keeps working
                # One line for the user; the traceback with -v (a contained
                # fault is reported, not a crash).
                log.warning("%s worker step failed: %s", self.name, exc,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                self._fault(gen, "error", f"{self.name} failed: {exc}")
                return
            self.steps += 1
            if self._faulted and gen == self._generation and (self._call_ok or not self._uses_busy):
                self._faulted = False
                if self._on_recovered is not None:
                    self._on_recovered()

    def _fault(self, gen: int, kind: str, message: str) -> None:
        """Record a fault of generation ``gen`` and schedule a restart."""
        with self._lock:
            if gen != self._generation:
                return
            self._generation += 1  # the faulty thread is retired
            self._busy_since = None
            self.faults += 1
            now = self._clock()
            while self._restarts and now - self._restarts[0] > self.window_s:
                self._restarts.popleft()
            over_budget = len(self._restarts) >= self.restart_budget
            self._retry_at = now + (self.backoff_s if over_budget else 0.0)
            self._restarts.append(now)
            first = not self._faulted
            self._faulted = True
            self._call_ok = False
        log.warning("%s (%s)%s", message, kind, " - backing off" if over_budget else "")
        if self._on_fault is not None and (first or over_budget):
            self._on_fault("gave_up" if over_budget else kind, message)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                busy_since, gen = self._busy_since, self._generation
                retry_at = self._retry_at
            if busy_since is not None and self._clock() - busy_since > self.deadline_s:
                self._fault(gen, "hung", f"{self.name} call exceeded its {self.deadline_s:g} s deadline")
                continue
            if retry_at is not None and self._clock() >= retry_at:
                with self._lock:
                    self._retry_at = None
                self.restarts += 1
                self._spawn()
