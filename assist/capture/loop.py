"""The capture loop: one thread owns the source, stamps frames, paces files,
watches for a stalled camera and reconnects with backoff.

Threads and why:

* the **loop thread** (``start``) or the caller (``iter_frames``) runs the
  state machine: pacing, watchdog, reconnect, status events, hand-off;
* a **reader thread** per opened source calls ``source.read()``. A hung
  camera can block inside OpenCV for ever; the loop only *waits* on the
  reader with deadlines, so it can declare the camera lost, reconnect, or shut
  down within a second, and simply abandons a reader that never comes back
  (the reader closes its own source if the read ever returns: releasing a
  capture from another thread while it reads can crash OpenCV).

Guarantees: frames are handed out in order with increasing ``index``; no
placeholder frame is ever produced (a lost camera yields nothing); a file that
ends is a clean stop (``ended``); a live source that ends is a lost camera.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from assist.capture import FrameSource
from assist.capture.errors import SourceError
from assist.capture.imaging import normalize_image
from assist.capture.sources import call_with_timeout
from assist.config import CameraConfig
from assist.core.clock import Clock, RealClock, VirtualClock
from assist.core.events import EventLog
from assist.core.frames import Frame

log = logging.getLogger(__name__)

# How often a waiting loop re-checks the stop flag: bounds shutdown latency.
_POLL_S = 0.05
# Pause after a failed live read before the next try: avoids a busy loop on a
# camera that fails instantly, short enough to catch the next frame.
_RETRY_PAUSE_S = 0.02
# A paced file that falls this far behind its schedule (slow decoding) is
# re-anchored instead of rushing through frames to catch up.
_MAX_LAG_S = 0.5
# This many undecodable frames in a row end a file with an error.
_MAX_SKIPPED_IN_A_ROW = 250

_ReadResult = tuple[np.ndarray | None, BaseException | None, float]


class _Reader:
    """Runs ``source.read()`` in its own daemon thread, one read per request.

    The loop can wait on a read with a deadline and abandon the reader if the
    read never returns; the reader then closes the source itself once (if
    ever) the read returns, so ``close`` never races a ``read``.
    """

    def __init__(self, source: FrameSource, clock: Clock) -> None:
        self.source = source
        self._clock = clock
        self._cond = threading.Condition()
        self._wanted = False
        self._result: _ReadResult | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=f"read-{source.name}"[:40], daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Ask for the next read (no-op if one is already asked for)."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()

    def take(self, timeout: float) -> _ReadResult | None:
        """The result of the requested read, waiting up to ``timeout`` seconds."""
        with self._cond:
            if self._result is None:
                self._cond.wait_for(lambda: self._result is not None, max(0.0, timeout))
            result, self._result = self._result, None
            return result

    def abandon(self) -> None:
        """Give up on this source: it is closed by the reader thread as soon as
        no read is running (immediately if idle)."""
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._wanted or self._abandoned)
                    if self._abandoned:
                        return
                    self._wanted = False
                try:
                    img, exc = self.source.read(), None
                except Exception as e:  # noqa: BLE001 - reported to the loop as a failed read
                    img, exc = None, e
                t_read = self._clock.now()
                with self._cond:
                    if self._abandoned:
                        return
                    self._result = (img, exc, t_read)
                    self._cond.notify_all()
        finally:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 - closing a dead device may fail; nothing to do
                log.debug("closing %s failed", self.source.name, exc_info=True)


class CaptureLoop:
    """Reads a source and hands out normalised, stamped frames.

    ``factory`` opens the source (``lambda: open_source(spec, cfg)``); it is
    called once at start (or :meth:`open`) and again for each reconnect.
    ``notify`` receives ``"camera_lost"`` / ``"camera_back"`` (the pipeline
    speaks them) and may return the words it speaks: the one ``status`` event
    of each change carries both those words and the loop's details. ``clock`` must be a real-time monotonic clock: it stamps
    live frames and drives pacing and the watchdog (a VirtualClock is
    replaced by real time for that). ``every_frame``: no pacing,
    every frame exactly once, ``t_capture = index / fps`` (video time).
    ``sleep`` (tests) replaces the interruptible waits for pacing and backoff;
    by default they wait on the stop flag so :meth:`stop` is prompt.
    ``extra_stats`` adds fields (e.g. the slots' drop counts) to the periodic
    ``capture`` status event. ``source``: an already opened source to use
    first (the one the CLI opened to check it), instead of calling ``factory``.
    """

    def __init__(self, factory: Callable[[], FrameSource], cfg: CameraConfig, events: EventLog, *,
                 notify: Callable[[str], str | None] | None = None, clock: Clock | None = None,
                 every_frame: bool = False, sleep: Callable[[float], None] | None = None,
                 extra_stats: Callable[[], dict[str, Any]] | None = None,
                 source: FrameSource | None = None) -> None:
        self._factory = factory
        self.cfg = cfg
        self.events = events
        self._notify = notify
        # A VirtualClock (the --every-frame pipeline clock) only moves when a
        # frame is processed: the watchdog, backoff and pacing need real time,
        # or a hung live read would never time out. Frames in video-time mode
        # are stamped index / fps anyway.
        self.clock: Clock = RealClock() if clock is None or isinstance(clock, VirtualClock) else clock
        self.every_frame = every_frame
        self._sleep = sleep
        self._extra_stats = extra_stats
        self._source: FrameSource | None = source
        self._reader: _Reader | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._started = False
        self._iter: Iterator[Frame] | None = None  # the iter_frames generator
        self._iter_lock = threading.Lock()  # held while iter_frames runs a step
        # Public counters (read from other threads; ints are updated atomically).
        self.frames_read = 0  # frames handed out
        self.frames_skipped = 0  # corrupt/undecodable frames of a file, skipped
        self.failed_reads = 0  # failed reads of a live source
        self.reconnects = 0  # successful reopen after a loss
        self.callback_errors = 0
        self.lost = False
        self.ended = False  # the file (or image list) finished: clean stop
        self.error: BaseException | None = None  # why the loop stopped, if not ended/stopped
        self.name: str | None = source.name if source is not None else None
        self.fps: float | None = source.fps if source is not None else None
        self.is_live: bool | None = source.is_live if source is not None else None

    # ------------------------------------------------------------------ API
    def open(self) -> FrameSource:
        """Open the source now (raises :class:`SourceError`); idempotent.

        Call it before :meth:`start` to turn a bad source into exit code 3 in
        the caller's thread; ``start``/``iter_frames`` call it otherwise.
        """
        if self._source is None:
            self._source = self._factory()
        src = self._source
        self.name, self.fps, self.is_live = src.name, src.fps, src.is_live
        return src

    def start(self, on_frame: Callable[[Frame], None]) -> None:
        """Run the loop in its own thread, calling ``on_frame`` for each frame.

        ``on_frame`` runs in the capture thread and must be quick (put into
        slots, cheap gate); an exception in it is logged and counted.
        """
        if self._started:
            raise RuntimeError("CaptureLoop already started")
        self._started = True
        self._thread = threading.Thread(target=self._run_thread, args=(on_frame,), name="capture", daemon=True)
        self._thread.start()

    def iter_frames(self) -> Iterator[Frame]:
        """Every frame in order, exactly once, stamped with video time
        (``index / fps``), in the caller's thread; for ``--every-frame``.

        Breaking out early is fine: :meth:`stop` (or dropping the iterator)
        releases the source.
        """
        if self._started:
            raise RuntimeError("CaptureLoop already started")
        self._started = True
        inner = self._frames(video_time=True)
        self._iter = inner

        def steps() -> Iterator[Frame]:
            # Each step runs under a lock so that stop() from another thread
            # can close the generator while it is suspended, never while it
            # runs (closing a running generator raises in the consumer).
            while True:
                with self._iter_lock:
                    try:
                        frame = next(inner)
                    except StopIteration:
                        return
                yield frame

        return steps()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop reading and release the source; returns True if the loop ended
        within ``timeout`` (a read blocked for ever is abandoned, not waited for)."""
        self._stop.set()
        src = self._source
        if src is not None:
            try:
                src.interrupt()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("interrupt of %s failed", src.name, exc_info=True)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        if self._iter is not None:
            # A running step sees the stop flag within _POLL_S; a suspended
            # generator (the consumer stopped iterating) is closed here.
            if not self._iter_lock.acquire(timeout=timeout):
                return False
            try:
                self._iter.close()  # runs its cleanup: the source is released
                if not self._running:
                    self._close_source()  # the generator never started: nothing else will
            finally:
                self._iter_lock.release()
            return True
        self._close_source()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the loop has ended (file end, error or stop); True if it has."""
        return self._done.wait(timeout)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    # ------------------------------------------------------------ internals
    def _run_thread(self, on_frame: Callable[[Frame], None]) -> None:
        for frame in self._frames(video_time=self.every_frame):
            try:
                on_frame(frame)
            except Exception:  # noqa: BLE001 - a consumer bug must not stop capture
                self.callback_errors += 1
                if self.callback_errors <= 3:
                    log.exception("frame consumer failed on frame %d", frame.index)

    def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _say(self, key: str) -> str | None:
        """Tell the notifier; return the words it speaks (for the status event), if any."""
        if self._notify is not None:
            try:
                text = self._notify(key)
                return text if isinstance(text, str) else None
            except Exception:  # noqa: BLE001 - a broken notifier must not stop capture
                log.exception("notify(%r) failed", key)
        return None

    def _close_source(self) -> None:
        reader, self._reader = self._reader, None
        src, self._source = self._source, None
        if reader is not None:
            reader.abandon()  # the reader closes the source when its read returns
        elif src is not None:
            try:
                src.close()
            except Exception:  # noqa: BLE001
                log.debug("closing %s failed", src.name, exc_info=True)

    def _backoff(self, attempt: int) -> float:
        """Delay before reconnect try ``attempt`` (0-based): initial, doubling, capped."""
        return min(self.cfg.reconnect_initial_s * (2 ** min(attempt, 30)), self.cfg.reconnect_max_s)

    def _reopen(self) -> FrameSource | None:
        """One reconnect try through the factory; None if it failed or we are stopping."""
        try:
            # In a helper thread so that stop() is not held up by a slow open.
            return call_with_timeout(self._factory, self.cfg.open_timeout_s * 2 + 1.0, self.name or "source",
                                     cleanup=lambda s: s.close(), cancel=self._stop)
        except SourceError as exc:
            if not self._stop.is_set():
                log.info("reconnect failed: %s", exc)
            return None
        except Exception:  # noqa: BLE001 - a factory bug counts as a failed try
            log.exception("reconnect raised")
            return None

    def _declare_lost(self, since: float) -> None:
        self.lost = True
        log.info("%s: no frame for %.1f s, camera lost; reconnecting", self.name, self.clock.now() - since)
        text = self._say("camera_lost")
        self.events.status("camera_lost", text=text, said=text is not None, source=self.name,
                           stall_timeout_s=self.cfg.stall_timeout_s)

    def _emit_stats(self, now: float, window: dict[str, float], final: bool = False) -> None:
        """A ``capture`` status event: fps over the last interval (the whole
        run for the final one at stop), counters, and ``extra_stats``."""
        since, base = (window["t0"], 0.0) if final else (window["t"], window["frames"])
        fps = (self.frames_read - base) / max(1e-6, now - since)
        extra: dict[str, Any] = {}
        if self._extra_stats is not None:
            try:
                extra = dict(self._extra_stats())
            except Exception:  # noqa: BLE001 - stats are optional
                log.debug("extra_stats failed", exc_info=True)
        self.events.status("capture", source=self.name, fps=round(fps, 2), frames=self.frames_read,
                           skipped=self.frames_skipped, failed_reads=self.failed_reads,
                           reconnects=self.reconnects, lost=self.lost, final=final, **extra)
        window["t"], window["frames"] = now, self.frames_read

    def _frames(self, video_time: bool) -> Iterator[Frame]:
        """The state machine shared by the thread and ``iter_frames``.

        Errors end the iteration and are left in ``self.error`` (the caller
        checks it), so both modes report them the same way.
        """
        self._running = True
        try:
            yield from self._loop(video_time)
        except Exception as exc:  # noqa: BLE001 - recorded for the caller
            if not isinstance(exc, SourceError):
                log.exception("capture loop failed")
            self.error = exc
        finally:
            self._close_source()
            self._running = False
            self._done.set()

    def _source_died(self, attempt: int) -> float:
        """Drop the current source; return when the next reconnect try may start."""
        self._close_source()
        return self.clock.now() + self._backoff(attempt)

    def _loop(self, video_time: bool) -> Iterator[Frame]:
        cfg = self.cfg
        clock = self.clock
        src = self.open()
        live = src.is_live
        fps = src.fps
        index = 0
        now = clock.now()
        last_frame_t = now  # watchdog: time of the last good frame (or of opening)
        opened_t = now  # a (re)opened live source gets stall_timeout_s to deliver
        attempt = 0  # reconnect tries since the last good frame
        retry_at = 0.0  # when the next reconnect try may start
        pace_t0: float | None = None  # pacing anchor (a file played like a camera)
        pace_i0 = 0
        skipped_in_a_row = 0  # a file whose reads all fail must not spin for ever
        stats = {"t0": now, "t": now, "frames": 0.0}
        status_every = cfg.status_interval_s if not video_time else 0.0  # video time: deterministic log

        while not self._stop.is_set():
            now = clock.now()
            if status_every and now - stats["t"] >= status_every:
                self._emit_stats(now, stats)
            if live and not self.lost and now - last_frame_t >= cfg.stall_timeout_s:
                self._declare_lost(last_frame_t)

            # --- no source: reconnect with backoff ---------------------------
            if self._source is None:
                if cfg.reconnect_attempts and attempt >= cfg.reconnect_attempts:
                    if not self.lost:
                        self._declare_lost(last_frame_t)
                    self.events.status("camera_gave_up", source=self.name, attempts=attempt)
                    raise SourceError(f"{self.name}: lost and not back after {attempt} reconnect tries "
                                      "(check the cable, power or network; camera.reconnect_attempts)")
                wait = retry_at - now
                if wait > 0:
                    if not self.lost:  # wake up for the lost notice if it falls due first
                        wait = min(wait, max(0.0, last_frame_t + cfg.stall_timeout_s - now) + 1e-3)
                    self._pause(wait)
                    continue
                new = self._reopen()
                attempt += 1
                if new is None:
                    retry_at = clock.now() + self._backoff(attempt)
                    continue
                self._source = new
                opened_t = clock.now()
                log.info("%s reopened (try %d)", new.name, attempt)
                continue

            src = self._source
            if self._reader is None:
                self._reader = _Reader(src, clock)
                self._reader.request()
            reader = self._reader

            # --- wait for the read, watching the live deadline ---------------
            deadline = max(last_frame_t, opened_t) + cfg.stall_timeout_s if live else None
            result = None
            while not self._stop.is_set():
                slice_s = _POLL_S if deadline is None else min(_POLL_S, deadline - clock.now())
                result = reader.take(slice_s)
                if result is not None or (deadline is not None and clock.now() >= deadline):
                    break
                if live and not self.lost and clock.now() - last_frame_t >= cfg.stall_timeout_s:
                    self._declare_lost(last_frame_t)  # a reopened source is still getting its chance
            if self._stop.is_set():
                break
            if result is None:
                # A live read that did not return in time: abandon that reader
                # (it may be blocked for ever) and reopen the device.
                log.info("%s: no frame within %.1f s, reopening", src.name, cfg.stall_timeout_s)
                retry_at = self._source_died(attempt)
                continue

            img, exc, t_read = result
            if exc is not None:
                log.warning("%s: read failed: %s", src.name, exc)
            frame_img = normalize_image(img, cfg.max_side_px) if img is not None else None

            if frame_img is None:
                if not live:
                    if src.ended:
                        if pace_t0 is not None and not video_time:
                            # Let the last frame last its 1/fps, like a camera.
                            self._pause(pace_t0 + (index - pace_i0) / (fps or 25.0) - clock.now())
                        self.ended = True
                        log.info("%s ended after %d frames (%d skipped)", src.name, self.frames_read,
                                 self.frames_skipped)
                        # A folder skips its undecodable images itself (no time slot): count them too.
                        self.events.status("end_of_input", source=src.name, frames=self.frames_read,
                                           skipped=self.frames_skipped + int(getattr(src, "unreadable", 0)))
                        break
                    self.frames_skipped += 1
                    skipped_in_a_row += 1
                    if skipped_in_a_row >= _MAX_SKIPPED_IN_A_ROW:
                        raise SourceError(f"{src.name}: {skipped_in_a_row} frames in a row cannot be decoded "
                                          f"after frame {index - skipped_in_a_row} (corrupt file?)")
                    index += 1  # the skipped frame keeps its slot: video time stays right
                    reader.request()
                    continue
                self.failed_reads += 1
                if src.ended or (deadline is not None and clock.now() >= deadline):
                    # A closed stream cannot recover, and a device that only
                    # fails is as good as lost: reopen (the lost notice waits
                    # for stall_timeout_s without a frame).
                    log.info("%s: %s, reopening", src.name, "stream ended" if src.ended else "reads keep failing")
                    retry_at = self._source_died(attempt)
                    continue
                self._pause(_RETRY_PAUSE_S)
                reader.request()
                continue

            # --- a good frame -------------------------------------------------
            reader.request()  # read ahead: decode (or wait for) the next frame meanwhile
            if video_time:
                t_capture = index / fps if fps else t_read
            elif live:
                t_capture = t_read
            else:
                rate = fps or 25.0
                now = clock.now()
                if pace_t0 is None or now - (pace_t0 + (index - pace_i0) / rate) > _MAX_LAG_S:
                    pace_t0, pace_i0 = now, index  # start, or re-anchor after falling behind
                self._pause(pace_t0 + (index - pace_i0) / rate - now)
                if self._stop.is_set():
                    break
                t_capture = clock.now()
            last_frame_t = clock.now()
            attempt = 0
            skipped_in_a_row = 0
            if self.lost:
                self.lost = False
                self.reconnects += 1
                log.info("%s: camera back", src.name)  # the spoken notice says it
                text = self._say("camera_back")
                self.events.status("camera_back", text=text, said=text is not None, source=src.name,
                                   reconnects=self.reconnects)
            self.frames_read += 1
            frame = Frame(index=index, t_capture=t_capture, image=frame_img)
            index += 1
            yield frame
        if status_every and self.frames_read:
            self._emit_stats(clock.now(), stats, final=True)
