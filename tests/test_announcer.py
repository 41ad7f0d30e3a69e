"""The announcer and the arbiter's late words and states, on the virtual clock
with the real none backend (utterances take their estimated duration)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from assist.config import HazardConfig, SpeechConfig
from assist.core.clock import VirtualClock
from assist.core.detection import Detection
from assist.core.events import EventLog, ListSink
from assist.core.priority import Priority
from assist.hazards.policy import HazardPolicy
from assist.speech.announcer import MAX_WARNING_S, Announcer
from assist.speech.arbiter import SpeechArbiter
from assist.speech.backends import NoneBackend
from helpers_tracks import box


class Rig:
    """Analyzer + world model + virtual arbiter + announcer, driven step by step."""

    def __init__(self, speech: SpeechConfig | None = None, hazards: HazardConfig | None = None) -> None:
        self.speech = speech or SpeechConfig()
        self.clock = VirtualClock(0.0)
        self.events, self.sink = EventLog(clock=self.clock), ListSink()
        self.events.add_sink(self.sink)
        self.backend = NoneBackend(self.speech)
        self.arb = SpeechArbiter(self.backend, self.events, self.speech, clock=self.clock, realtime=False)
        self.ann = Announcer(self.arb, self.speech, clock=self.clock.now)
        self.an = HazardPolicy(hazards or HazardConfig(), self.speech.language, verbosity=self.speech.verbosity)
        self.frame = 0

    def step(self, t: float, dets: list[Detection], warn: bool = True) -> list:
        self.clock.advance_to(t)
        self.arb.advance_to(t)
        anns = self.an.update(dets, t, self.frame)
        self.frame += 1
        if warn:  # every run, as the pipeline does: what had no room goes next
            self.ann.warn(anns, self.an.world)
        return anns

    def speech_events(self, event: str | None = None) -> list[dict]:
        return [e for e in self.sink.of_type("speech") if event is None or e["event"] == event]

    def said(self) -> list[str]:
        return [e["text"] for e in self.speech_events("start")]


def person(cx: float, h: float) -> Detection:
    return Detection("person", 0.8, box(cx, 0.55, h))


def bus(cx: float, h: float) -> Detection:
    return Detection("bus", 0.9, box(cx, 0.5, h, aspect=1.2))


def test_a_waiting_warning_says_the_latest_state_and_the_older_one_is_superseded() -> None:
    # Verbose: the bus standing far ahead is news at once (at normal verbosity only once it closes in).
    rig = Rig(SpeechConfig(verbosity="verbose"))
    rig.arb.say("a long description of a busy street with many things in it", Priority.IMPORTANT)
    # A bus ahead, far then closing fast while the first utterance plays.
    hs = [0.12] * 4 + [0.12 * 1.25 ** i for i in range(1, 9)]
    for i, h in enumerate(hs):
        rig.step(i / 8, [bus(0.5, min(h, 0.9))])
    end = rig.arb.flush()
    assert end > 0
    starts = rig.speech_events("start")
    bus_starts = [e for e in starts if "Bus" in e["text"]]
    assert len(bus_starts) == 1, rig.said()
    # The words are the latest state (a distance much nearer than when first decided), said once.
    text = bus_starts[0]["text"]
    assert text.count("Bus") == 1 and ("metres" in text or "very near" in text), text
    reasons = [e["reason"] for e in rig.speech_events("dropped")]
    assert "expired" not in reasons
    assert "superseded" in reasons  # the first decision about the bus was replaced by the newer one
    assert bus_starts[0]["objects"] and len(set(bus_starts[0]["objects"])) == len(bus_starts[0]["objects"])


def test_an_object_that_left_is_not_announced() -> None:
    rig = Rig()
    rig.arb.say("a long description of a busy street with many things in it", Priority.IMPORTANT)
    for i in range(6):
        rig.step(i / 8, [person(0.5, 0.5)])  # near, ahead: announced
    assert rig.arb.pending  # waiting behind the description
    for i in range(6, 40):
        rig.step(i / 8, [])  # it left the view
    rig.arb.flush()
    assert not any("erson" in t for t in rig.said())
    gone = [e for e in rig.speech_events("dropped") if e["reason"] == "gone"]
    assert len(gone) == 1


def test_a_warning_names_at_most_two_objects_within_three_seconds() -> None:
    rig = Rig(SpeechConfig(rate=120))
    dets = [person(0.1, 0.5), Detection("dog", 0.8, box(0.5, 0.8, 0.3)), bus(0.85, 0.7),
            Detection("bicycle", 0.8, box(0.6, 0.6, 0.5))]
    for i in range(64):
        rig.step(i / 8, dets)
    rig.arb.flush()
    warnings = rig.speech_events("start")
    assert warnings
    for w in warnings:
        labels = {rig.an.world.get(t).label for t in w["objects"] if rig.an.world.get(t) is not None}
        assert len(labels) <= 2, w
        assert rig.backend.estimate_duration(w["text"]) <= MAX_WARNING_S + 1e-6, w["text"]
    # Nothing is lost to the budget: what a warning had no room for comes in the next one.
    said = " ".join(w["text"] for w in warnings)
    assert all(name in said for name in ("Person", "Dog", "Bus", "Bicycle")), [w["text"] for w in warnings]


def test_distance_units_and_clock_style() -> None:
    for unit, style, expect in (("metres", "sides", "Person ahead, 4 metres"),
                                ("steps", "sides", "Person ahead, 6 steps"),
                                ("none", "clock", "Person at 12 o'clock"),
                                ("metres", "clock", "Person at 12 o'clock, 4 metres")):
        rig = Rig(SpeechConfig(distance_unit=unit, direction_style=style))
        for i in range(8):
            rig.step(i / 8, [person(0.5, 0.42)])  # ~3.9 m with a 1.7 m prior at 70 degrees, 4:3
        rig.arb.flush()
        assert rig.said() == [expect], (unit, style, rig.said())


def test_quiet_speaks_urgent_warnings_only() -> None:
    rig = Rig(SpeechConfig(verbosity="quiet"))
    for i in range(8):
        rig.step(i / 8, [person(0.5, 0.42)])  # near: a message, not urgent
    for i in range(8, 16):
        rig.step(i / 8, [person(0.5, 0.42), Detection("chair", 0.8, box(0.2, 0.6, 0.8))])  # very near: urgent
    rig.arb.flush()
    assert rig.said() == ["Chair on the left, very near"]


def test_camera_back_replaces_camera_lost_and_the_cooldown_never_hides_a_change() -> None:
    rig = Rig()
    for t, key in ((0.0, "camera_lost"), (0.3, "camera_back"), (2.0, "camera_lost"), (2.2, "camera_back")):
        rig.clock.advance_to(t)
        rig.arb.advance_to(t)
        rig.ann.state(key)
    rig.arb.flush()
    camera = [e for e in rig.speech_events("start") if e.get("state") == "camera"]
    assert [e["text"] for e in camera] == ["Camera lost", "Camera back", "Camera lost", "Camera back"]
    assert not rig.speech_events("suppressed")
    interrupted = [e["text"] for e in rig.speech_events("interrupted")]
    assert interrupted == ["Camera lost", "Camera lost"]  # a newer state cuts the older one off


def test_a_state_waits_for_warnings_and_is_said_again_when_cut_off() -> None:
    rig = Rig()
    rig.ann.state("camera_back")  # a notification: starts at once
    rig.clock.advance_to(0.1)
    rig.arb.say("Car ahead, very near", Priority.IMPORTANT)  # cuts it off
    rig.arb.say("a street", Priority.TEXT)
    rig.arb.flush()
    said = rig.said()
    assert said[0] == "Camera back" and said[1] == "Car ahead, very near"
    assert said[-1] == "Camera back" or "Camera back" in said[2:], said  # said again, never cancelled
    assert not [e for e in rig.speech_events("dropped") if e["text"] == "Camera back"]


def test_a_queued_state_is_replaced_by_the_newer_state() -> None:
    rig = Rig()
    rig.arb.say("Car ahead, very near", Priority.IMPORTANT)
    rig.ann.state("hazards_unavailable")
    rig.ann.state("hazards_back")
    rig.arb.flush()
    assert rig.said() == ["Car ahead, very near", "Hazard detection back"]
    dropped = rig.speech_events("dropped")
    assert [(e["text"], e["reason"]) for e in dropped] == [("Hazard detection unavailable", "superseded")]


def test_repeat_last_and_pause() -> None:
    rig = Rig()
    rig.arb.say("Bus ahead", Priority.MESSAGE)
    rig.arb.flush()
    rig.clock.advance_to(3.0)
    assert rig.arb.repeat_last()
    rig.arb.flush()
    assert rig.said() == ["Bus ahead", "Bus ahead"]
    assert rig.speech_events("start")[-1].get("repeat") is True
    rig.arb.set_paused(True)
    rig.arb.say("a street", Priority.TEXT)
    rig.arb.say("Car ahead, very near", Priority.IMPORTANT)
    rig.arb.flush()
    assert rig.said()[-1] == "Car ahead, very near"
    assert [e["reason"] for e in rig.speech_events("dropped")] == ["paused"]
    rig.arb.set_paused(False)
    rig.clock.advance_to(6.0)
    rig.arb.say("a street", Priority.TEXT)
    rig.arb.flush()
    assert rig.said()[-1] == "a street"


def test_quiet_never_mutes_a_camera_state() -> None:
    rig = Rig(SpeechConfig(verbosity="quiet"))
    rig.ann.state("camera_lost")
    rig.ann.state("camera_back")
    rig.arb.say("a street", Priority.TEXT)
    rig.arb.flush()
    assert rig.said()[-1] == "Camera back"
    assert [e["reason"] for e in rig.speech_events("dropped")] == ["quiet"]


def test_hazard_event_fields_carry_distance_clock_and_ttc() -> None:
    rig = Rig(hazards=dataclasses.replace(HazardConfig()))
    anns = []
    for i in range(24):
        anns += rig.step(i / 8, [person(0.8, 0.2 * 3.0 / (3.0 - i / 8))])
    assert anns
    for a in anns:
        f = a.event_fields()
        assert 0.2 <= f["distance_m"] <= 200 and 1 <= f["clock"] <= 12
        assert f["ttc_s"] is None or f["ttc_s"] > 0
    assert any(a.approaching and a.ttc_s is not None and a.ttc_s < 4.0 for a in anns)


# ------------------------------------------------------------------ what the user was told outlives the track


def _look_away_and_back(rig: Rig, gap_s: float, back: Detection | Callable[[float], Detection],
                        back_s: float = 1.0) -> tuple[list[str], float]:
    """A person near ahead for 1 s, then nothing for ``gap_s`` (its track ends), then ``back`` for ``back_s``
    (a detection, or one per time since it came back). Returns what was said and when the object came back."""
    t = 0.0
    while t < 1.0:
        rig.step(t, [person(0.5, 0.42)])
        t += 0.125
    while t < 1.0 + gap_s:
        rig.step(t, [])
        t += 0.125
    t_back = t
    while t < t_back + back_s:
        rig.step(t, [back(t - t_back) if callable(back) else back])
        t += 0.125
    rig.arb.flush()
    return rig.said(), t_back


def test_the_same_object_seen_again_after_a_look_away_is_not_news() -> None:
    TOLD_MEMORY_S = HazardConfig().told_memory_s  # noqa: N806 - the default, as the config names it

    # Longer than the class cool-down, so only the world's memory keeps it quiet.
    gap = HazardConfig().class_cooldown_s + 1.0
    assert gap < TOLD_MEMORY_S
    rig = Rig()
    said, _ = _look_away_and_back(rig, gap, person(0.5, 0.42))
    assert said == ["Person ahead, 4 metres"], said
    assert rig.an.world.objects and rig.an.world.objects[0].track_id != 1  # a new track: the memory carried it
    # Past the memory it is news again; and another side is another object.
    for gap_s, back in ((TOLD_MEMORY_S + 1.0, person(0.5, 0.42)), (gap, person(0.12, 0.42))):
        rig = Rig()
        said, _ = _look_away_and_back(rig, gap_s, back)
        assert len(said) == 2 and said[0] == "Person ahead, 4 metres", (gap_s, said)


def test_an_object_seen_again_nearer_or_approaching_is_said_at_once() -> None:
    """Never trade away a warning that matters: the memory only silences the same or a better state."""
    gap = HazardConfig().class_cooldown_s + 1.0
    # Back very near (worse than the "near" it was told): said at once.
    rig = Rig()
    said, t_back = _look_away_and_back(rig, gap, person(0.5, 0.75))
    assert len(said) == 2 and "very near" in said[1], said
    start = [e for e in rig.speech_events("start") if "very near" in e["text"]][0]
    assert start["t"] - t_back < 0.6, start  # as soon as confirmed (3 runs at 8 Hz)
    # Back and closing fast (approaching): said at once too.
    rig = Rig()
    _, t_back = _look_away_and_back(rig, gap, lambda dt: person(0.5, 0.42 * 3.0 / (3.0 - dt)),  # closing: 3 s to contact
                                    back_s=1.25)
    later = [e for e in rig.speech_events("start") if e["t"] >= t_back]
    assert rig.said()[0] == "Person ahead, 4 metres" and later, rig.said()
    assert "coming" in later[0]["text"] or "very near" in later[0]["text"], rig.said()
    assert later[0]["t"] - t_back < 1.25, later


# ------------------------------------------------------------------ descriptions between warnings


def test_a_description_waits_for_a_gap_after_warnings_and_a_cut_supersedes_it() -> None:
    from assist.speech.arbiter import DESCRIPTION_GAP_S

    def start_of(rig: Rig, text: str) -> float | None:
        return next((e["t"] for e in rig.speech_events("start") if e["text"] == text), None)

    def end_of(rig: Rig, text: str) -> float:
        return next(e["t"] for e in rig.speech_events("end") if e["text"] == text)

    # The run's first description may follow the warnings at once (the user wants to know where they are).
    rig = Rig()
    rig.arb.say("Bus ahead, very near", Priority.IMPORTANT, t_capture=0.0)
    rig.clock.advance_to(0.1)
    rig.arb.say("A street with a bus.", Priority.TEXT, t_capture=0.1)
    rig.arb.flush()
    assert start_of(rig, "A street with a bus.") == end_of(rig, "Bus ahead, very near")
    # Later ones wait for a gap after a warning ...
    rig.clock.advance_to(6.0)
    rig.arb.say("Dog on the left, very near", Priority.IMPORTANT, t_capture=6.0)
    rig.clock.advance_to(6.5)
    rig.arb.say("A bedroom with a bed.", Priority.TEXT, t_capture=6.5)
    rig.arb.flush()
    gap = start_of(rig, "A bedroom with a bed.") - end_of(rig, "Dog on the left, very near")
    assert abs(gap - DESCRIPTION_GAP_S) < 1e-6, gap
    # ... and one still waiting when the view changes is of a scene no longer in front: dropped.
    rig.clock.advance_to(12.0)
    rig.arb.say("Car ahead, very near", Priority.IMPORTANT, t_capture=12.0)
    rig.clock.advance_to(12.2)
    rig.arb.say("A parking lot.", Priority.TEXT, t_capture=12.2)
    rig.clock.advance_to(12.5)
    assert rig.arb.supersede_descriptions(12.5) == 1
    rig.arb.flush()
    assert start_of(rig, "A parking lot.") is None
    assert [e["reason"] for e in rig.speech_events("dropped") if e["text"] == "A parking lot."] == ["superseded"]
    # A newer description supersedes a waiting one too (never two descriptions back to back).
    rig.clock.advance_to(20.0)
    rig.arb.say("Truck on the right, very near", Priority.IMPORTANT, t_capture=20.0)
    rig.arb.say("A road.", Priority.TEXT, t_capture=20.0)
    rig.clock.advance_to(20.5)
    rig.arb.say("A road with a car.", Priority.TEXT, t_capture=20.5)
    rig.arb.flush()
    assert start_of(rig, "A road.") is None and start_of(rig, "A road with a car.") is not None
    assert [e["reason"] for e in rig.speech_events("dropped") if e["text"] == "A road."] == ["superseded"]
