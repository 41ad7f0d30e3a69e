"""The speech arbiter: one priority queue in front of the TTS backend.

Levels follow speech-dispatcher's categories (``Priority``):

* ``important`` (urgent hazard): interrupts whatever non-important utterance
  is playing and is never interrupted itself; queued behind another important,
  where urgent warnings that wait together are merged into one utterance.
* ``message`` (other warnings): waits for a warning that is playing, but
  cuts off a caption or notice (as speech-dispatcher's ``message`` cancels
  ``text`` being spoken): a warning must not wait seconds behind a
  description of the scene.
* ``text`` (captions): only the newest queued caption is kept (an older one
  is dropped ``superseded``); a description never starts within
  ``DESCRIPTION_GAP_S`` of the end of a warning (it waits for a gap, so the
  listener hears the warning apart from the scene; the first description
  of a run and one the user asked for are exempt), and
  :meth:`SpeechArbiter.supersede_descriptions` drops the queued ones when the
  view changed (a cut: they describe a scene no longer in front).
* ``notification`` (status): cancelled by anything higher, queued or playing.

The run's first description (every description until one has been said to
its end) is the exception to "a warning cancels a caption": the user wants
to know where they are, so a warning delays it (queued) or cuts it off and
it is said again from the start right after the warnings (no gap; a cut in
the view drops it only while another description plays), unless a newer one
replaced it or its frame grew older than ``speech.caption_max_age_s``. On the
night street (bench/RESULTS.md) a startup description cut off 0.07 s in left
the listener without one until 10 s. The rules per pair of items: ``queue_rules.py``.

A warning (important or message) cancels queued captions and notices: by the
time it has been said the scene they describe is older still, and the next
caption will come from a fresher frame. Every item expires relative to the
capture time of its frame (``speech.warning_max_age_s``,
``speech.caption_max_age_s``, ``speech.notification_max_age_s``); an expired
item is dropped when it would start, never spoken late. The same text (case
and punctuation aside) within ``speech.repeat_cooldown_s`` of its last start,
or while it is still queued or playing, is suppressed.

Late words and states (issue 15):

* ``compose``: an utterance may carry a callback that makes its words (or
  ``(words, extra start-event fields)``) when it is about to start (the announcer composes a warning from the world model
  as it is then). It returns None when there is nothing left to say (the
  object left the view or stopped being a hazard): the item is dropped with
  reason ``gone``. Such an item is not dropped as expired (its words are
  current by construction; the callback decides whether they are stale).
* ``subjects``: what an utterance is about (track ids). A newer utterance
  about any of the same subjects drops a queued older one with reason
  ``superseded``: no utterance ever says two states of one object.
* ``state_key``: speech about a state (``camera``, ``hazards``, ``captions``).
  A newer state replaces a queued older one (``superseded``) and interrupts a
  playing older one; the repeat cool-down never suppresses it, warnings never
  cancel it, it never expires, and when something more urgent interrupts it
  it is said again afterwards: the last state heard is the true one.

Every decision is a ``speech`` event: ``start``, ``end``, ``interrupted``,
``dropped`` (with a ``reason``: expired, cancelled, superseded,
gone, paused, quiet, stopped, backend_failed) or ``suppressed``. A backend
that raises is restarted; after
``speech.restart_budget`` failures in a row the arbiter switches to the
``none`` backend (``status`` event ``speech_fallback``) and keeps going, so
warnings always reach the log.

User control (``assist.runtime.control``): ``set_paused`` mutes everything
but urgent warnings (muted items are ``dropped`` with reason ``paused``;
``speech.verbosity = "quiet"`` does the same with reason ``quiet``);
``repeat_last`` says the last utterance again (``repeat: true``); an item
``say(..., asked=True)`` is what the user asked for: never muted or
suppressed, it cuts off a description but never a warning.

Two ways to run:

* ``realtime=True``: a worker thread plays the queue; ``say`` never blocks.
* ``realtime=False`` (``--every-frame``): no thread; the queue is played on the
  virtual clock by ``advance_to(t)``/``flush()``, each utterance taking the
  backend's estimated duration, so the same input gives the same events at the
  same times.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from assist.config import SpeechConfig
from assist.core.clock import Clock, RealClock
from assist.core.events import EventLog
from assist.core.priority import Priority
from assist.speech.backends import NoneBackend, SpeechBackend, Utterance
from assist.speech.earcon import make_earcon
from assist.speech.queue_rules import cuts_off, fate_of_queued, same_state
from assist.speech.queued import QueuedItem as _Item
from assist.speech.queued import SpeechDecision, normalize_text

log = logging.getLogger(__name__)

# A description waits this long after a warning ends before it starts: back to back,
# "Bus ahead, 3 metres. A street with parked cars." runs the warning into the scene.
DESCRIPTION_GAP_S = 1.0


class SpeechArbiter:
    """Priority queue, interruption, expiry and repeat suppression in front of a backend."""

    def __init__(self, backend: SpeechBackend, events: EventLog, cfg: SpeechConfig, *,
                 clock: Clock | None = None, realtime: bool = True,
                 on_decision: Callable[[SpeechDecision], None] | None = None) -> None:
        self.backend = backend
        self.on_decision = on_decision  # an observer (the soak); called under the lock, must be quick
        self.events = events
        self.cfg = cfg
        self.clock = clock or RealClock()
        self.realtime = realtime
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self._current: _Item | None = None
        self._last_start: dict[str, float] = {}
        self._seq = 0
        self._failures = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        # User control (issue 16): what "repeat" says, and the pause switch.
        self._last_said: tuple[str, Priority, int | None] | None = None
        self.paused = False
        # Virtual mode: the playing item's end time and when the player is free.
        self._v_end = 0.0
        self._v_free = self.clock.now()
        # Descriptions wait for a gap after warnings (DESCRIPTION_GAP_S).
        self._warning_end: float | None = None
        self._described = False  # a description has been said to its end in this run

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker thread (realtime mode; a no-op in virtual mode)."""
        if not self.realtime or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="speech-arbiter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Drop what is queued, kill a speaking child, stop the worker and close the backend.

        Returns within about ``timeout`` seconds even if the backend misbehaves.
        """
        now = self.clock.now()
        with self._cond:
            if self._stopping and self._thread is None:
                return
            self._stopping = True
            queued, self._queue = self._queue, []
            for item in queued:
                self._emit(item, "dropped", now, reason="stopped")
            cur = self._current
            if cur is not None:
                cur.interrupted_at = now
                cur.utt.cancel.set()
                if not self.realtime:
                    self._emit_interrupted(cur, now)
                    self._current = None
            self._cond.notify_all()
        self.backend.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("speech worker did not stop within %.1f s", timeout)
            self._thread = None
        self.backend.close()

    # ------------------------------------------------------------------ input
    def _max_age(self, priority: Priority) -> float:
        if priority in (Priority.IMPORTANT, Priority.MESSAGE):
            return self.cfg.warning_max_age_s
        if priority == Priority.TEXT:
            return self.cfg.caption_max_age_s
        return self.cfg.notification_max_age_s

    def _muted_reason(self, priority: Priority, state_key: str | None = None) -> str | None:
        """Why an item at ``priority`` is not spoken now: ``paused`` or ``quiet``
        (speech.verbosity); urgent warnings are never muted, and ``quiet`` never
        mutes a state (the camera lost or back must be heard)."""
        if priority == Priority.IMPORTANT:
            return None
        if self.paused:
            return "paused"
        if getattr(self.cfg, "verbosity", "normal") == "quiet" and state_key is None:
            return "quiet"
        return None

    def say(self, text: str, priority: Priority, *, t_capture: float | None = None, frame: int | None = None,
            direction: str | None = None, compose: Callable[[], object] | None = None,
            subjects: frozenset[object] | set[object] | tuple[object, ...] = (), state_key: str | None = None,
            asked: bool = False, repeat: bool = False, remember: bool = True) -> None:
        """Queue ``text`` at ``priority`` (non-blocking, thread-safe).

        ``t_capture`` is the clock time of the frame it is about (default now):
        expiry counts from there. ``direction`` (left/ahead/right) pans the
        earcon that precedes an important warning. ``compose``, ``subjects``
        and ``state_key``: see the module doc (``text`` is then the words as
        they would be now, for the log of a drop before the start). ``asked``:
        the user asked for it (a requested description, a repeat, a control
        confirmation): it is spoken even when paused or quiet and despite the
        repeat cool-down, cuts off a playing description or notice (never a
        warning) and is not replaced or cancelled while queued. ``repeat`` marks
        its events ``repeat: true``; ``remember=False`` keeps it out of
        :meth:`repeat_last`.
        """
        text = " ".join(str(text).split())
        if not text:
            return
        priority = Priority(priority)
        now = self.clock.now()
        t_cap = now if t_capture is None else float(t_capture)
        kill = False
        with self._cond:
            if not self.realtime:
                self._advance_locked(now)
            self._seq += 1
            utt = Utterance(text, priority, frame, direction, seq=self._seq)
            item = _Item(utt, normalize_text(text), now, t_cap, t_cap + self._max_age(priority), compose=compose,
                         subjects=frozenset(subjects), state_key=state_key, asked=asked, repeat=repeat,
                         remember=remember)
            if self._stopping:
                self._emit(item, "dropped", now, reason="stopped")
                return
            muted = None if asked else self._muted_reason(priority, state_key)
            if muted is not None:
                self._emit(item, "dropped", now, reason=muted)
                return
            if not asked and compose is None and state_key is None and self._is_repeat(item, now):
                self._emit(item, "suppressed", now)
                return
            if priority == Priority.IMPORTANT and direction and self.cfg.earcon:
                utt.earcon = make_earcon(direction)
            if (priority == Priority.IMPORTANT and compose is None and not item.subjects and state_key is None
                    and self._merge_urgent_locked(item)):
                return
            # Cancel what the new item makes pointless (queued only; assist/speech/queue_rules.py).
            keep: list[_Item] = []
            for q in self._queue:
                reason = fate_of_queued(item, q, self._first_description(q))
                if reason is None:
                    keep.append(q)
                else:
                    self._emit(q, "dropped", now, reason=reason)
            keep.append(item)
            self._queue = keep
            cur = self._current
            newer_state = cur is not None and same_state(item, cur)
            if cur is not None and cur.interrupted_at is None and cuts_off(item, cur):
                cur.interrupted_at = now
                cur.superseded = newer_state
                cur.cut_by = priority
                cur.utt.cancel.set()
                if self.realtime:
                    kill = True
                else:
                    self._emit_interrupted(cur, now)
                    self._requeue_locked(cur)
                    self._current = None
                    self._v_free = now
            if self.realtime:
                self._cond.notify_all()
            else:
                self._advance_locked(now)
        if kill:
            # Outside the lock: killing and reaping a child takes a few ms and
            # other threads must be able to queue meanwhile.
            self.backend.interrupt()

    def _requeue_locked(self, item: _Item) -> None:
        """A state notice, or the run's first description, cut off by something more
        urgent is said again afterwards, unless a newer state of the same thing (a newer
        description) replaced it, the user paused (``cut_by`` None), or we are stopping."""
        if item.superseded or self._stopping or item.cut_by is None:
            return
        if item.state_key is not None:
            again = not any(q.state_key == item.state_key for q in self._queue)
        else:
            # Only when a warning cut it off (what the user asked for replaces it: a requested
            # description is the newer one, a confirmation was wanted instead).
            again = (self._first_description(item) and item.cut_by <= Priority.MESSAGE
                     and not any(q.priority == Priority.TEXT and not q.asked for q in self._queue))
        if again:
            self._queue.append(item.fresh_copy())

    def _merge_urgent_locked(self, item: _Item) -> bool:
        """Join an urgent warning to one already waiting behind an urgent one.

        An urgent warning is never interrupted, so a second and third queued
        behind it would each wait a whole utterance and the last would expire
        unsaid (seen live on the demo: "bus very near" dropped behind "person
        very near"). Waiting urgent warnings become one utterance, said as soon
        as the playing one ends, which expires with its newest part. Returns
        True when merged (no separate event: the merged text carries both).
        """
        cur = self._current
        waiting = [q for q in self._queue if q.priority == Priority.IMPORTANT and q.compose is None
                   and not q.subjects and q.state_key is None]
        if not waiting or cur is None or cur.priority != Priority.IMPORTANT:
            return False
        q = waiting[-1]
        text = q.utt.text.rstrip(". ") + ". " + item.utt.text
        q.utt = Utterance(text, Priority.IMPORTANT, frame=q.utt.frame, direction=q.utt.direction,
                          earcon=q.utt.earcon, seq=q.utt.seq)
        q.key = normalize_text(text)
        q.t_capture = max(q.t_capture, item.t_capture)
        q.expires = max(q.expires, item.expires)
        return True

    def _is_repeat(self, item: _Item, now: float) -> bool:
        if self._current is not None and self._current.key == item.key and self._current.interrupted_at is None:
            return True
        if any(q.key == item.key for q in self._queue):
            return True
        last = self._last_start.get(item.key)
        return last is not None and now - last < self.cfg.repeat_cooldown_s

    # ------------------------------------------------------------------ events
    def _emit(self, item: _Item, event: str, t: float, **fields: object) -> None:
        extra: dict[str, object] = dict(fields)
        if event == "dropped":
            extra.setdefault("age_s", round(t - item.t_capture, 3))
        if event == "start" and item.utt.earcon is not None:
            extra["earcon"] = item.utt.direction
        if item.repeat:
            extra["repeat"] = True
        if item.state_key is not None:
            extra["state"] = item.state_key
        if event == "start" and item.log_fields:
            extra.update(item.log_fields)
        self.events.emit("speech", text=item.utt.text, frame=item.utt.frame, t=t, event=event,
                         priority=item.priority.label, **extra)
        if self.on_decision is not None:
            reason = fields.get("reason")
            self.on_decision(SpeechDecision(event, item.priority.label, t, item.t_capture, item.expires,
                                            len(self._queue), None if reason is None else str(reason)))

    def _emit_interrupted(self, item: _Item, t: float) -> None:
        """The ``interrupted`` event, with the reason when it was not something more urgent (``paused``)."""
        self._emit(item, "interrupted", t, **({} if item.interrupt_reason is None else {"reason": item.interrupt_reason}))

    def _pop_next_locked(self, now: float) -> _Item | None:
        """Take the best queued item that has not expired at ``now`` (dropping expired ones)."""
        while self._queue:
            best = min(self._queue, key=lambda q: (q.priority, q.utt.seq))
            self._queue.remove(best)
            if best.compose is not None:
                try:
                    composed = best.compose()
                except Exception:  # noqa: BLE001 - a composing bug must not stop speech
                    log.exception("composing an utterance failed")
                    composed = None
                if isinstance(composed, tuple):  # (text, extra fields for the start event)
                    composed, fields = composed
                    fields = dict(fields)
                    fresh = fields.pop("t_capture", None)
                    if isinstance(fresh, (int, float)):
                        # The words describe the world as it was seen at ``fresh``: age and
                        # expiry count from there, not from when the warning was first decided.
                        best.expires += float(fresh) - best.t_capture
                        best.t_capture = float(fresh)
                    best.log_fields = fields
                text = " ".join(str(composed).split()) if composed else ""
                if not text:
                    self._emit(best, "dropped", now, reason="gone")
                    continue
                best.utt.text, best.key = text, normalize_text(text)
            elif best.state_key is None and now > best.expires:
                self._emit(best, "dropped", now, reason="expired")
                continue
            elif best.state_key is not None and now > best.expires:
                # A state still queued is still the true one (a newer state would
                # have replaced it): it is current now, not late.
                best.expires += now - best.t_capture
                best.t_capture = now
            return best
        return None

    # ------------------------------------------------------------------ realtime worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                hold = self._hold_until_locked()
                if hold is not None and hold > self.clock.now():
                    self._cond.wait(hold - self.clock.now())  # a warning or a newer item may come meanwhile
                    continue
                item = self._pop_next_locked(self.clock.now())
                if item is None:
                    self._cond.notify_all()
                    continue
                now = self.clock.now()
                self._current = item
                self._last_start[item.key] = now
                self._remember_locked(item)
                self._emit(item, "start", now)
            self._play_with_restarts(item)
            with self._cond:
                now = self.clock.now()
                if item.utt.cancel.is_set():
                    self._emit_interrupted(item, item.interrupted_at if item.interrupted_at is not None else now)
                    self._requeue_locked(item)
                elif not item.failed:
                    self._emit(item, "end", now)
                    self._heard_locked(item)
                self._ended_locked(item, now)
                self._current = None
                self._cond.notify_all()

    def _play_with_restarts(self, item: _Item) -> None:
        """Play ``item``; on a backend failure restart it (or fall back to none) and retry."""
        while True:
            backend = self.backend
            try:
                backend.play(item.utt)
            except Exception as exc:  # noqa: BLE001 - any engine failure must not stop the agent
                if item.utt.cancel.is_set():
                    return
                self._on_failure(backend, exc)
                now = self.clock.now()
                if now > item.expires or self._stopping:
                    with self._cond:
                        self._emit(item, "dropped", now, reason="backend_failed")
                    item.failed = True
                    return
                continue
            with self._cond:
                self._failures = 0
            return

    def _on_failure(self, backend: SpeechBackend, exc: Exception) -> None:
        """Count a failure; restart the backend or, past the budget, switch to ``none``."""
        with self._cond:
            self._failures += 1
            failures = self._failures
            self.events.status("speech_backend_failed", text=f"speech backend {backend.name} failed: {exc}",
                               backend=backend.name, failures=failures)
            fallback = failures > self.cfg.restart_budget
            if fallback:
                self.backend = NoneBackend(self.cfg, wav_dir=backend.wav_dir)
                self._failures = 0
                self.events.status("speech_fallback",
                                   text=f"speech backend {backend.name} keeps failing; speaking to the log only",
                                   backend="none", failed_backend=backend.name)
        log.warning("speech backend %s failed (%s)%s", backend.name, exc,
                    "; falling back to none" if fallback else "; restarting it")
        try:
            if fallback:
                backend.close()
            else:
                backend.restart()
        except Exception:  # noqa: BLE001 - a broken backend's cleanup must not stop us
            log.exception("speech backend %s: restart/close failed", backend.name)

    # ------------------------------------------------------------------ virtual clock
    def _advance_locked(self, t: float) -> None:
        """Play the queue on the virtual clock up to time ``t``."""
        while True:
            if self._current is not None:
                if self._v_end > t:
                    return
                self._emit(self._current, "end", self._v_end)
                self._heard_locked(self._current)
                self._ended_locked(self._current, self._v_end)
                self._current = None
                self._v_free = self._v_end
            if not self._queue:
                return
            start = max(self._v_free, min(q.t_said for q in self._queue))
            hold = self._hold_until_locked()
            if hold is not None:
                start = max(start, hold)
            if start > t:
                return
            item = self._pop_next_locked(start)
            if item is None:
                return
            self._current = item
            self._last_start[item.key] = start
            self._remember_locked(item)
            self._emit(item, "start", start)
            self._v_end = round(start + self.backend.utterance_duration(item.utt), 6)
            if self.backend.wav_dir is not None:
                self.backend.save_wav(item.utt)

    def advance_to(self, t: float) -> None:
        """Virtual mode: play the queue up to time ``t`` (utterances take their
        estimated duration). A no-op in realtime mode."""
        if self.realtime:
            return
        with self._cond:
            self._advance_locked(t)

    def flush(self) -> float:
        """Finish everything queued; return the time speech ends.

        Virtual mode: plays the rest of the queue on the virtual clock (items
        that expire before their turn are dropped as usual). Realtime mode:
        waits until the queue is empty (at most a minute).
        """
        if self.realtime:
            self.wait_idle(60.0)
            return self.clock.now()
        with self._cond:
            self._advance_locked(float("inf"))
            return max(self._v_free, self.clock.now())

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or playing; False on timeout.

        Virtual mode: True when idle at the time reached so far (no waiting).
        """
        with self._cond:
            if not self.realtime:
                return not self._queue and self._current is None
            return self._cond.wait_for(lambda: not self._queue and self._current is None, timeout)

    # ------------------------------------------------------------------ user control (issue 16)
    def _ended_locked(self, item: _Item, t: float) -> None:
        """Bookkeeping when an utterance ends or is cut off: when the last warning ended."""
        if item.priority <= Priority.MESSAGE and item.state_key is None:
            self._warning_end = t

    def _hold_until_locked(self) -> float | None:
        """When the next item may start, if it is a description that must wait for a gap
        after a warning (None: it may start now)."""
        if not self._queue or not self._described or self._warning_end is None:
            return None
        best = min(self._queue, key=lambda q: (q.priority, q.utt.seq))
        if best.priority != Priority.TEXT or best.asked or self._first_description(best):
            return None
        return self._warning_end + DESCRIPTION_GAP_S

    def supersede_descriptions(self, before: float) -> int:
        """The view changed (a cut): drop queued descriptions of frames captured before
        ``before`` (reason ``superseded``; not one the user asked for, and never the
        run's first description while no description is playing: the user wants to
        know where they started). Returns how many were dropped."""
        now = self.clock.now()
        with self._cond:
            if not self.realtime:
                self._advance_locked(now)
            cur = self._current
            # A description playing now tells the user where they started; one waiting
            # behind it is of a scene no longer in front, first or not.
            describing = cur is not None and cur.priority == Priority.TEXT and not cur.asked
            keep, dropped = [], 0
            for q in self._queue:
                first = self._first_description(q) and not describing
                if q.priority == Priority.TEXT and not q.asked and not first and q.t_capture < before:
                    self._emit(q, "dropped", now, reason="superseded")
                    dropped += 1
                else:
                    keep.append(q)
            self._queue = keep
            return dropped

    def _first_description(self, item: _Item) -> bool:
        """Whether ``item`` is (still) the run's first description: a description, not one the
        user asked for, while none has been said to its end (judged now, not when it was queued:
        one queued while the first plays is ordinary once the first has been heard)."""
        return item.priority == Priority.TEXT and not item.asked and not self._described

    def _heard_locked(self, item: _Item) -> None:
        """An utterance was said to its end: after the first description, descriptions are ordinary."""
        if item.priority == Priority.TEXT and not item.asked:
            self._described = True

    def _remember_locked(self, item: _Item) -> None:
        if item.remember:
            self._last_said = (item.utt.text, item.priority, item.utt.frame)

    @property
    def last_said(self) -> str | None:
        """The text :meth:`repeat_last` would say, or None."""
        with self._cond:
            return self._last_said[0] if self._last_said is not None else None

    def repeat_last(self) -> bool:
        """Say the last utterance again (``repeat: true``), whatever the cool-down; False when none.

        A repeated urgent warning is queued as an ordinary warning: it is old
        news, so it must not cut off a warning about now.
        """
        with self._cond:
            last = self._last_said
        if last is None:
            return False
        text, priority, frame = last
        self.say(text, max(priority, Priority.MESSAGE), frame=frame, asked=True, repeat=True)
        return True

    def say_feedback(self, text: str) -> None:
        """A short confirmation of a user command: said at once (after a playing warning), never repeated."""
        self.say(text, Priority.TEXT, asked=True, remember=False)

    def set_paused(self, paused: bool) -> None:
        """Mute (True) or unmute everything but urgent warnings. Pausing drops what is
        queued and cuts off what is playing, except urgent warnings and what the user asked for."""
        kill = False
        now = self.clock.now()
        with self._cond:
            if not self.realtime:
                self._advance_locked(now)
            self.paused = paused
            if not paused:
                return
            keep = []
            for q in self._queue:
                if q.priority == Priority.IMPORTANT or q.asked:
                    keep.append(q)
                else:
                    self._emit(q, "dropped", now, reason="paused")
            self._queue = keep
            cur = self._current
            if cur is not None and cur.interrupted_at is None and cur.priority != Priority.IMPORTANT and not cur.asked:
                cur.interrupted_at = now
                cur.interrupt_reason = "paused"
                cur.utt.cancel.set()
                if self.realtime:
                    kill = True
                    self._cond.notify_all()
                else:
                    self._emit_interrupted(cur, now)
                    self._current = None
                    self._v_free = now
        if kill:
            self.backend.interrupt()

    def estimate_duration(self, text: str) -> float:
        """Seconds ``text`` takes to say at the configured rate (the backend's estimate)."""
        return float(self.backend.estimate_duration(text))

    # ------------------------------------------------------------------ introspection
    @property
    def pending(self) -> list[tuple[str, str]]:
        """(priority label, text) of the queued items, next first (for tests and the preview)."""
        with self._cond:
            items = sorted(self._queue, key=lambda q: (q.priority, q.utt.seq))
            return [(q.priority.label, q.utt.text) for q in items]

    @property
    def speaking(self) -> str | None:
        """Text being spoken now, or None."""
        with self._cond:
            return self._current.utt.text if self._current is not None else None
