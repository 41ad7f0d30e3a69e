"""Speech arbiter: priorities, interruption, expiry, repeats, restarts and the
deterministic virtual-clock mode, with a fake backend that plays by waiting."""

from __future__ import annotations

import os
import threading
import time

import pytest

from assist.config import SpeechConfig
from assist.core.clock import VirtualClock
from assist.core.events import EventLog, ListSink
from assist.core.priority import Priority
from assist.speech.arbiter import SpeechArbiter, normalize_text
from assist.speech.backends import NoneBackend
from tests.helpers_speech import FakeBackend, wait_for

IMP, MSG, TXT, NOTE = Priority.IMPORTANT, Priority.MESSAGE, Priority.TEXT, Priority.NOTIFICATION


def make(cfg: SpeechConfig | None = None, **fake_kw):
    cfg = cfg or SpeechConfig()
    events, sink = EventLog(), ListSink()
    events.add_sink(sink)
    backend = FakeBackend(cfg, **fake_kw)
    arb = SpeechArbiter(backend, events, cfg)
    arb.start()
    return arb, backend, sink


def speech(sink: ListSink, event: str | None = None) -> list[tuple[str, str]]:
    """(event, text) of speech events, optionally of one kind."""
    return [(e["event"], e["text"]) for e in sink.of_type("speech") if event is None or e["event"] == event]


@pytest.fixture
def arb_fake():
    arb, backend, sink = make()
    yield arb, backend, sink
    arb.stop()


def test_urgent_warning_interrupts_caption_within_50ms(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("a man riding a bike down a busy street", TXT, frame=1)
    assert wait_for(lambda: backend.playing == "a man riding a bike down a busy street")
    t0 = time.monotonic()
    arb.say("Bus very near, left", IMP, frame=2, direction="left")
    assert wait_for(lambda: backend.playing == "Bus very near, left", timeout=1.0)
    latency = backend.play_time("Bus very near, left") - t0
    assert latency < 0.050, f"warning started {latency * 1000:.1f} ms after it was said"
    # The backend was told to stop the caption, and the warning came with its earcon.
    assert [c[1] for c in backend.interrupts()] == ["a man riding a bike down a busy street"]
    assert backend.calls[-1][3] is True
    assert speech(sink) == [("start", "a man riding a bike down a busy street"),
                            ("interrupted", "a man riding a bike down a busy street"),
                            ("start", "Bus very near, left")]
    start = sink.of_type("speech", event="start")[-1]
    assert start["priority"] == "important" and start["frame"] == 2 and start["earcon"] == "left"


def test_important_is_never_interrupted_and_messages_wait(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("Car very near ahead", IMP)
    assert wait_for(lambda: backend.playing == "Car very near ahead")
    arb.say("Truck very near right", IMP)
    arb.say("Person approaching left", MSG)
    time.sleep(0.05)
    assert backend.playing == "Car very near ahead" and not backend.interrupts()
    backend.finish()
    assert wait_for(lambda: backend.playing == "Truck very near right")
    backend.finish()
    assert wait_for(lambda: backend.playing == "Person approaching left")
    backend.finish()
    assert arb.wait_idle(1.0)
    assert backend.played() == ["Car very near ahead", "Truck very near right", "Person approaching left"]
    assert not speech(sink, "interrupted")


def describe_once(arb: SpeechArbiter, backend: FakeBackend, text: str = "a hallway") -> None:
    """Say a first description to its end: later descriptions are ordinary (the first one
    outlives warnings, see test_the_first_description_*)."""
    arb.say(text, TXT)
    assert wait_for(lambda: backend.playing == text)
    backend.finish()
    assert arb.wait_idle(1.0)


def test_a_message_cuts_off_a_caption_but_not_another_warning(arb_fake):
    """A warning never waits seconds behind a description (speech-dispatcher's
    message cancels text being spoken); it does wait for another warning."""
    arb, backend, sink = arb_fake
    describe_once(arb, backend)
    arb.say("a kitchen with a stove", TXT)
    assert wait_for(lambda: backend.playing == "a kitchen with a stove")
    t0 = time.monotonic()
    arb.say("Dog near ahead", MSG)
    assert wait_for(lambda: backend.playing == "Dog near ahead", timeout=1.0)
    assert time.monotonic() - t0 < 0.2
    assert speech(sink, "interrupted") == [("interrupted", "a kitchen with a stove")]
    arb.say("Bicycle on the left", MSG)
    time.sleep(0.05)
    assert backend.playing == "Dog near ahead"  # a warning is not cut off by another message
    backend.finish()
    assert wait_for(lambda: backend.playing == "Bicycle on the left")
    backend.finish()
    assert arb.wait_idle(1.0)


def test_captions_replace_older_captions(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("Bicycle near left", MSG)
    assert wait_for(lambda: backend.playing == "Bicycle near left")
    for i, text in enumerate(["a street with cars", "a street with a bus", "a bus stop with people"]):
        arb.say(text, TXT, frame=10 + i)
    assert arb.pending == [("text", "a bus stop with people")]
    backend.finish()
    assert wait_for(lambda: backend.playing == "a bus stop with people")
    backend.finish()
    assert arb.wait_idle(1.0)
    assert backend.played() == ["Bicycle near left", "a bus stop with people"]
    dropped = sink.of_type("speech", event="dropped")
    assert [(d["text"], d["reason"], d["frame"]) for d in dropped] == [
        ("a street with cars", "superseded", 10), ("a street with a bus", "superseded", 11)]


def test_warnings_cancel_queued_captions_and_notices(arb_fake):
    arb, backend, sink = arb_fake
    describe_once(arb, backend)
    arb.say("Car very near ahead", IMP)
    assert wait_for(lambda: backend.playing == "Car very near ahead")
    arb.say("a street with cars", TXT)
    arb.say("camera reconnected", NOTE)
    arb.say("Person approaching right", MSG)
    assert arb.pending == [("message", "Person approaching right")]
    reasons = {d["text"]: d["reason"] for d in sink.of_type("speech", event="dropped")}
    assert reasons == {"a street with cars": "cancelled", "camera reconnected": "cancelled"}


def test_notification_is_cancelled_by_anything_higher_even_while_playing(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("camera reconnected", NOTE)
    assert wait_for(lambda: backend.playing == "camera reconnected")
    arb.say("a park with trees", TXT)
    assert wait_for(lambda: backend.playing == "a park with trees")
    assert speech(sink)[:3] == [("start", "camera reconnected"), ("interrupted", "camera reconnected"),
                                ("start", "a park with trees")]


def test_expired_items_are_dropped_before_they_are_spoken():
    arb, backend, sink = make(SpeechConfig(caption_max_age_s=0.1, warning_max_age_s=0.3))
    try:
        # Too old already when said: never reaches the backend.
        arb.say("a beach with surfers", TXT, t_capture=time.monotonic() - 1.0, frame=3)
        assert wait_for(lambda: arb.wait_idle(0))
        # Expires while it waits behind a long warning.
        arb.say("Train near ahead", IMP)
        assert wait_for(lambda: backend.playing == "Train near ahead")
        arb.say("a railway station", TXT, t_capture=time.monotonic(), frame=4)
        arb.say("Person near left", MSG, t_capture=time.monotonic(), frame=5)
        time.sleep(0.35)
        backend.finish()
        assert arb.wait_idle(1.0)
    finally:
        arb.stop()
    assert backend.played() == ["Train near ahead"]
    dropped = {d["text"]: d for d in sink.of_type("speech", event="dropped")}
    assert dropped["a beach with surfers"]["reason"] == "expired" and dropped["a beach with surfers"]["age_s"] >= 1.0
    # The run's first description is not cancelled by the warning: it waits for it, and
    # is dropped only when its frame grows older than caption_max_age_s.
    assert dropped["a railway station"]["reason"] == "expired"
    assert dropped["Person near left"]["reason"] == "expired" and dropped["Person near left"]["age_s"] > 0.3


def test_repeats_are_suppressed_within_cooldown():
    arb, backend, sink = make(SpeechConfig(repeat_cooldown_s=0.3), auto_finish_s=0.01)
    try:
        arb.say("Car ahead", MSG)
        assert wait_for(lambda: backend.played() == ["Car ahead"])
        arb.say("Car ahead", MSG)  # still playing: suppressed
        assert arb.wait_idle(1.0)
        arb.say("car, AHEAD!", MSG)  # same words, finished just now: suppressed
        arb.say("Car near ahead", MSG)  # different text: spoken
        assert arb.wait_idle(1.0)
        time.sleep(0.35)
        arb.say("Car ahead.", MSG)  # cooldown over
        assert arb.wait_idle(1.0)
    finally:
        arb.stop()
    assert backend.played() == ["Car ahead", "Car near ahead", "Car ahead."]
    assert speech(sink, "suppressed") == [("suppressed", "Car ahead"), ("suppressed", "car, AHEAD!")]
    assert normalize_text("Car, ahead!") == normalize_text("car ahead")


def test_queued_duplicate_is_suppressed(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("Bus near left", IMP)
    assert wait_for(lambda: backend.playing == "Bus near left")
    arb.say("Dog near right", MSG)
    arb.say("Dog near right", MSG)
    arb.say("Bus near left", IMP)  # still playing
    assert arb.pending == [("message", "Dog near right")]
    assert len(speech(sink, "suppressed")) == 2


def test_shutdown_kills_a_speaking_child():
    arb, backend, sink = make(child=True)
    arb.say("a long description that is still being spoken when the agent stops", TXT)
    assert wait_for(lambda: len(backend.child_pids) == 1, 5.0)
    pid = backend.child_pids[0]
    assert os.path.exists(f"/proc/{pid}") or os.name != "posix"
    arb.say("queued notice", NOTE)
    t0 = time.monotonic()
    arb.stop(timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    assert backend.closed
    if os.name == "posix":
        assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 1.0), "speaking child survived stop()"
    assert ("interrupted", "a long description that is still being spoken when the agent stops") in speech(sink)
    assert [(d["text"], d["reason"]) for d in sink.of_type("speech", event="dropped")] == [("queued notice", "stopped")]
    arb.say("after stop", IMP)  # never raises, never speaks
    assert speech(sink)[-1] == ("dropped", "after stop")


def test_backend_failure_restarts_then_speaks():
    arb, backend, sink = make(SpeechConfig(restart_budget=3), fail_plays=2, auto_finish_s=0.01)
    try:
        arb.say("Car very near ahead", IMP)
        assert wait_for(lambda: len(speech(sink, "end")) == 1)
    finally:
        arb.stop()
    assert backend.restarts == 2
    assert backend.played() == ["Car very near ahead"] * 3
    assert speech(sink) == [("start", "Car very near ahead"), ("end", "Car very near ahead")]
    assert len(sink.of_type("status", event="speech_backend_failed")) == 2
    assert not sink.of_type("status", event="speech_fallback")


def test_backend_that_keeps_failing_falls_back_to_none_and_keeps_warnings():
    arb, backend, sink = make(SpeechConfig(restart_budget=2, rate=450), fail_plays=1000)
    try:
        arb.say("Truck very near ahead", IMP, direction="ahead")
        assert wait_for(lambda: len(speech(sink, "end")) == 1, 3.0)
        assert isinstance(arb.backend, NoneBackend)
        arb.say("Person near left", MSG)  # the agent keeps running on the none backend
        assert wait_for(lambda: len(speech(sink, "end")) == 2, 3.0)
    finally:
        arb.stop()
    assert backend.restarts == 2 and backend.closed
    assert len(sink.of_type("status", event="speech_backend_failed")) == 3
    assert len(sink.of_type("status", event="speech_fallback")) == 1
    assert speech(sink, "end") == [("end", "Truck very near ahead"), ("end", "Person near left")]


def test_concurrent_say_accounts_for_every_item():
    arb, backend, sink = make(auto_finish_s=0.002)
    levels = [IMP, MSG, TXT, NOTE]
    try:
        def producer(k: int) -> None:
            for i in range(25):
                arb.say(f"item {k} {i}", levels[(k + i) % 4])

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert arb.wait_idle(5.0)
    finally:
        arb.stop()
    final: dict[str, str] = {}
    for e in sink.of_type("speech"):
        if e["event"] in ("end", "interrupted", "dropped", "suppressed"):
            # urgent items waiting together are merged into one utterance: "a. b"
            for part in e["text"].split(". "):
                assert part not in final, f"{part} finished twice"
                final[part] = e["event"]
    assert set(final) == {f"item {k} {i}" for k in range(4) for i in range(25)}
    starts = [e["text"] for e in sink.of_type("speech", event="start")]
    ended = [e["text"] for e in sink.of_type("speech") if e["event"] in ("end", "interrupted")]
    assert len(starts) == len(set(starts)) and sorted(starts) == sorted(ended)


# ---------------------------------------------------------------- deterministic virtual-clock mode


def virtual_arbiter(cfg: SpeechConfig | None = None, t0: float = 0.0
                    ) -> tuple[SpeechArbiter, VirtualClock, ListSink, NoneBackend]:
    """An arbiter on a virtual clock starting at ``t0`` (--every-frame mode), its events collected."""
    cfg = cfg or SpeechConfig()
    clock = VirtualClock(t0)
    events, sink = EventLog(clock=clock), ListSink()
    events.add_sink(sink)
    backend = NoneBackend(cfg)
    return SpeechArbiter(backend, events, cfg, clock=clock, realtime=False), clock, sink, backend


def run_virtual(script: list[tuple[float, str, Priority, str | None]], cfg: SpeechConfig | None = None):
    """Feed (time, text, level, direction) on a virtual clock; return the speech events and the end time."""
    arb, clock, sink, backend = virtual_arbiter(cfg, 100.0)
    arb.start()
    for i, (t, text, level, direction) in enumerate(script):
        clock.advance_to(100.0 + t)
        arb.advance_to(clock.now())
        arb.say(text, level, t_capture=clock.now(), frame=i, direction=direction)
    end = arb.flush()
    arb.stop()
    return [(e["t"], e["event"], e["text"], e["priority"]) for e in sink.of_type("speech")], end - 100.0, backend


SCRIPT = [
    (0.0, "a city street with cars and a bus", TXT, None),
    (1.0, "Bus very near, left", IMP, "left"),
    (1.2, "Person approaching right", MSG, None),
    (1.3, "a street corner", TXT, None),
    (1.4, "a crowded street corner", TXT, None),
    (8.0, "Bus very near, left", IMP, "left"),
    (30.0, "Bus very near, left", IMP, "left"),
]


def test_virtual_mode_is_deterministic_and_timed_by_estimates():
    first, end1, backend = run_virtual(SCRIPT)
    second, end2, _ = run_virtual(SCRIPT)
    assert first == second and end1 == end2
    est = backend.estimate_duration
    caption_len = est("a city street with cars and a bus")
    assert caption_len > 1.0  # so the warning at t=1.0 really lands mid-caption
    bus = 0.16 + est("Bus very near, left")  # earcon + speech
    person = est("Person approaching right")
    expected = [
        (0.0, "start", "a city street with cars and a bus", "text"),
        (1.0, "interrupted", "a city street with cars and a bus", "text"),
        (1.0, "start", "Bus very near, left", "important"),
        (1.4, "dropped", "a street corner", "text"),  # superseded by the newer caption
        (1.0 + bus, "end", "Bus very near, left", "important"),
        (1.0 + bus, "start", "Person approaching right", "message"),
        (1.0 + bus + person, "end", "Person approaching right", "message"),
    ]
    # Captions said after the message are kept (only the newest); it plays after the message.
    got = [(round(t, 3), ev, text, pr) for t, ev, text, pr in first]
    for t, ev, text, pr in expected:
        assert any(abs(g[0] - round(t, 3)) <= 0.002 and g[1:] == (ev, text, pr) for g in got), (t, ev, text, got)
    caption_start = [g for g in got if g[1:3] == ("start", "a crowded street corner")]
    # ... at once: no description has been heard to its end yet (the first was cut off), so
    # this one is the run's first and does not wait for the gap later descriptions leave
    # after a warning (issue 15; the gap: test_announcer).
    assert caption_start and abs(caption_start[0][0] - round(1.0 + bus + person, 3)) <= 0.002
    # The same warning 7 s later is suppressed (cooldown 10 s), 29 s later it is spoken again.
    assert (8.0, "suppressed", "Bus very near, left", "important") in got
    assert [g[0] for g in got if g[1:3] == ("start", "Bus very near, left")] == [1.0, 30.0]
    assert abs(end1 - (30.0 + bus)) < 0.01


def test_virtual_mode_drops_items_that_expire_in_the_queue():
    cfg = SpeechConfig(caption_max_age_s=1.0)
    script = [(0.0, "Car very near, ahead, approaching fast", IMP, "ahead"),
              (0.1, "a parking lot full of cars", TXT, None)]
    events, _end, backend = run_virtual(script, cfg)
    warning_end = 0.16 + backend.estimate_duration("Car very near, ahead, approaching fast")
    assert warning_end > 1.1  # the caption is older than 1 s when its turn comes
    assert [(ev, text) for _t, ev, text, _p in events] == [
        ("start", "Car very near, ahead, approaching fast"), ("end", "Car very near, ahead, approaching fast"),
        ("dropped", "a parking lot full of cars")]
    assert abs(events[-1][0] - round(warning_end, 3)) <= 0.002


def test_urgent_warnings_waiting_behind_an_urgent_one_are_merged_not_lost(arb_fake):
    arb, backend, sink = arb_fake
    arb.say("Bus ahead, approaching", IMP)
    assert wait_for(lambda: backend.playing == "Bus ahead, approaching")
    arb.say("Person on the left, very near", IMP, frame=83)
    arb.say("Bus ahead, very near", IMP, frame=84)
    assert arb.pending == [("important", "Person on the left, very near. Bus ahead, very near")]
    backend.finish()
    assert wait_for(lambda: backend.playing == "Person on the left, very near. Bus ahead, very near")
    backend.finish()
    assert arb.wait_idle(1.0)
    assert not speech(sink, "dropped")


def test_the_first_description_cut_off_by_a_warning_is_said_again_right_after_it():
    """Issue 15: the user wants to know where they are. A warning that cuts off the
    run's first description does not cost it: it is said again from the start
    right after the warning (no gap), and only a description heard to its end
    makes later ones ordinary (cut off and not said again)."""
    events, _end, backend = run_virtual([
        (0.0, "a street with parked cars", TXT, None),
        (0.3, "Person ahead, 4 metres", MSG, None),
        (6.0, "a shop entrance", TXT, None),
        (6.3, "Dog on the left, 3 metres", MSG, None),
    ])
    est = backend.estimate_duration
    said = [(round(t, 3), ev, text) for t, ev, text, _p in events]
    warning_end = round(0.3 + est("Person ahead, 4 metres"), 3)
    assert said[:5] == [
        (0.0, "start", "a street with parked cars"), (0.3, "interrupted", "a street with parked cars"),
        (0.3, "start", "Person ahead, 4 metres"), (warning_end, "end", "Person ahead, 4 metres"),
        (warning_end, "start", "a street with parked cars")]
    assert (round(warning_end + est("a street with parked cars"), 3), "end", "a street with parked cars") in said
    # The second description is ordinary: cut off by a warning, and that is all.
    assert [(ev, text) for _t, ev, text in said if text == "a shop entrance"] == [
        ("start", "a shop entrance"), ("interrupted", "a shop entrance")]


def test_the_first_description_waits_for_warnings_and_a_cut_but_not_past_its_age():
    """Queued behind warnings, the first description is not cancelled by them nor by a
    cut in the view (supersede_descriptions); a newer description replaces it; it is
    still dropped when its frame is older than caption_max_age_s by its turn."""
    arb, _clock, sink, _backend = virtual_arbiter(SpeechConfig(caption_max_age_s=5.0))
    arb.say("Bus ahead, very near", IMP, t_capture=0.0)
    arb.say("a bus stop", TXT, t_capture=0.0)
    arb.say("Person on the left, 3 metres", MSG, t_capture=0.0)
    assert arb.supersede_descriptions(before=0.5) == 0  # a cut: the first description stays
    assert [p for p, _ in arb.pending] == ["message", "text"]
    arb.say("a busy bus stop", TXT, t_capture=0.1)  # a newer view of the same place replaces it
    arb.flush()
    got = [(e["event"], e["text"], e.get("reason")) for e in sink.of_type("speech") if e["priority"] == "text"]
    assert got == [("dropped", "a bus stop", "superseded"), ("start", "a busy bus stop", None),
                   ("end", "a busy bus stop", None)]
    # Too old by its turn: dropped as expired, not said late.
    arb2, _clock2, sink2, _backend2 = virtual_arbiter(SpeechConfig(caption_max_age_s=1.0))
    arb2.say("Bus ahead, very near", IMP, t_capture=0.0)
    arb2.say("a bus stop", TXT, t_capture=0.0)
    arb2.say("Person on the left, 3 metres", MSG, t_capture=0.0)
    arb2.flush()
    assert [(e["event"], e.get("reason")) for e in sink2.of_type("speech") if e["text"] == "a bus stop"] == [
        ("dropped", "expired")]


def test_a_pause_cuts_off_the_first_description_for_good_and_says_why(arb_fake):
    """Pausing is the user's choice: the description it cuts off is logged ``interrupted``
    with reason ``paused`` and is not said again after the pause."""
    arb, backend, sink = arb_fake
    arb.say("a quiet park", TXT)
    assert wait_for(lambda: backend.playing == "a quiet park")
    arb.set_paused(True)
    assert arb.wait_idle(1.0)
    arb.set_paused(False)
    time.sleep(0.1)
    assert backend.played() == ["a quiet park"]
    cut = sink.of_type("speech", event="interrupted")
    assert [(e["text"], e.get("reason")) for e in cut] == [("a quiet park", "paused")]


def test_a_description_waiting_behind_the_first_one_is_dropped_at_a_cut():
    """The first description playing tells the user where they started; one queued
    behind it describes a scene the cut took away (seen on the dense clip: "A train."
    of the zoomed bus, said after the view turned)."""
    arb, clock, sink, _backend = virtual_arbiter()
    arb.say("a bicycle on the left of a long street", TXT, t_capture=0.0)
    clock.advance_to(0.5)
    arb.say("a train", TXT, t_capture=0.4)
    assert arb.speaking == "a bicycle on the left of a long street"
    assert arb.supersede_descriptions(before=0.6) == 1
    arb.flush()
    assert ("dropped", "a train") in speech(sink) and ("start", "a train") not in speech(sink)
