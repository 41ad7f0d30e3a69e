"""The announcer: decisions about objects in, words out at the moment they are spoken.

Warnings. The hazard policy decides *that* an object (or a group of one
class) is worth a warning; the announcer queues a warning about those
objects in the speech arbiter with a ``compose`` callback, and the words are
made when the utterance is about to start, from the world model as it is
then (``assist.hazards.world``). So a warning that waited behind another
says the object's latest state ("Bus ahead, 3 metres", not the "Bus ahead,
approaching" of a second ago), and says nothing if the object left the view
or stopped being a hazard (dropped, reason ``gone``).

Budget, so the listener keeps up (measured in bench/RESULTS.md):

- one warning names at most two objects (groups), most urgent first: urgent
  before others, then the nearest;
- it must fit ``MAX_WARNING_S`` (3 s) at the configured rate; a second group
  that does not fit is left out (its hazard event is in the log), and a
  first that does not fit loses its distance;
- each object appears once, in its latest state: a newer decision about an
  object that is still waiting replaces the waiting warning (logged
  ``dropped``, reason ``superseded``) with one that covers both, so nothing
  waiting is lost and nothing is said twice.

States. Camera lost / back, hazard detection unavailable / back,
descriptions unavailable / back are said through :meth:`Announcer.state`
keyed by what they are about (``camera``, ``hazards``, ``captions``): the
arbiter lets a newer state replace a queued or playing older one, never
suppresses or expires it, and says it again if something urgent cut it off,
so the last state heard is always the true one.

Verbosity (``speech.verbosity``): ``quiet`` speaks urgent warnings only
(states are always spoken); ``normal`` what the policy decides; ``verbose``
widens the policy (see ``assist.hazards.policy.HazardPolicy``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assist.config import SpeechConfig
from assist.core.priority import Priority
from assist.hazards.world import ObjectState, WorldModel
from assist.speech import Speaker
from assist.speech.phrases import PROXIMITY_ORDER, hazard_phrase, notice

log = logging.getLogger(__name__)

MAX_WARNING_S = 3.0  # longest warning, seconds at the configured rate
MAX_GROUPS = 2  # objects (groups of one class) named in one warning

# The notices that are states, and what they are about.
STATE_OF_NOTICE = {
    "camera_lost": "camera", "camera_back": "camera",
    "hazards_unavailable": "hazards", "hazards_back": "hazards",
    "captions_unavailable": "captions", "captions_back": "captions",
    "too_dark": "quality", "too_blurred": "quality",
}
# Losing the camera or a model is news the user must hear even if a warning
# comes at once; coming back can wait for the warnings.
_URGENT_NOTICES = ("camera_lost", "hazards_unavailable", "captions_unavailable")


@dataclass(frozen=True)
class WarningGroup:
    """One decision to warn: objects of one class, at a priority."""

    label: str
    track_ids: tuple[int, ...]
    priority: Priority
    direction: str | None = None


class Announcer:
    """Composes warnings and state notices late, under a budget (see module doc)."""

    def __init__(self, speaker: Speaker, cfg: SpeechConfig, *, clock: Callable[[], float] | None = None) -> None:
        self.speaker = speaker
        self.cfg = cfg
        self.language = cfg.language
        self._clock = clock
        self._lock = threading.Lock()
        self._world: WorldModel | None = None
        self._waiting: list[WarningGroup] = []  # groups of the warning queued last (until it starts)
        self._waiting_token = 0
        self._leftover: list[WarningGroup] = []  # live groups a warning had no room for: said next

    # ------------------------------------------------------------------ warnings
    def warn(self, decisions: Sequence[Any], world: WorldModel) -> None:
        """Queue a warning about the objects of ``decisions`` (``Announcement``-like:
        label, track_ids or track_id, priority, direction), composed when it starts.

        Call it after every detector run, with no decisions too: objects a
        warning had no room for (the budget) are then queued as the next one.
        """
        groups = [WarningGroup(d.label, tuple(d.track_ids or (d.track_id,)), Priority(d.priority),
                               getattr(d, "direction", None)) for d in decisions]
        if self.cfg.verbosity == "quiet":
            groups = [g for g in groups if g.priority == Priority.IMPORTANT]
        with self._lock:
            if not groups and not self._leftover:
                return
            self._world = world
            new_ids = {tid for g in groups for tid in g.track_ids}
            # Merge with the warning still waiting and with what the last one had
            # no room for: their groups keep their place unless a newer decision
            # is about the same objects.
            kept = [g for g in self._waiting + self._leftover if not set(g.track_ids) & new_ids]
            self._leftover = []
            merged = groups + kept
            self._waiting = merged
            self._waiting_token += 1
            token = self._waiting_token
        merged.sort(key=lambda g: g.priority)
        top = merged[0]
        subjects = frozenset(("track", tid) for g in merged for tid in g.track_ids)
        preview = self.compose_warning(merged, mark=False) or hazard_phrase(
            top.label, len(top.track_ids), top.direction or "ahead", "far", False, self.language)

        def compose() -> tuple[str, dict[str, object]] | None:
            with self._lock:
                if self._waiting_token == token:
                    self._waiting = []
            said: list[int] = []
            text = self.compose_warning(merged, said=said)
            if text is None:
                return None
            fields: dict[str, object] = {"objects": said}
            seen = self._latest_seen([WarningGroup(top.label, tuple(said), top.priority)], world)
            if seen is not None:
                fields["t_capture"] = seen
            return text, fields

        t_capture = self._latest_seen(merged, world)
        self.speaker.say(preview, top.priority, t_capture=t_capture, direction=top.direction,
                         compose=compose, subjects=subjects)

    @staticmethod
    def _latest_seen(groups: Sequence[WarningGroup], world: WorldModel) -> float | None:
        seen = [r.t_seen for g in groups for tid in g.track_ids if (r := world.get(tid)) is not None]
        return max(seen) if seen else None

    def describe(self, decision: Any, world: WorldModel) -> str:
        """The words for one decision (the hazard event's text): its own class, count,
        direction and state, with its lead object's distance and clock position."""
        del world  # the decision carries the state it was made on
        unit = self.cfg.distance_unit
        return hazard_phrase(decision.label, getattr(decision, "count", 1), decision.direction, decision.proximity,
                             decision.approaching, self.language, distance_m=getattr(decision, "distance_m", None),
                             clock=getattr(decision, "clock", None), distance_unit=unit,
                             direction_style=self.cfg.direction_style)

    def compose_warning(self, groups: Sequence[WarningGroup], *, mark: bool = True,
                        said: list[int] | None = None) -> str | None:
        """The warning's words from the world model now: at most two groups, most urgent
        first, within the time budget; None when none is still present and a hazard.
        ``said`` receives the track ids named."""
        with self._lock:
            world = self._world
        if world is None:
            return None
        live: list[tuple[WarningGroup, list[ObjectState]]] = []
        for g in groups:
            members = self._members(g, world, require_hazard=True)
            if members:
                live.append((g, members))
        if not live:
            return None
        live.sort(key=lambda gm: (not any(m.urgent for m in gm[1]), min(m.distance_m for m in gm[1])))
        parts: list[str] = []
        named: list[ObjectState] = []
        for g, members in live[:MAX_GROUPS]:
            text = self._group_text(g, members)
            if text is None:
                continue
            candidate = " ".join(p.rstrip(".") + "." for p in [*parts, text]) if parts else text
            if parts and self.speaker.estimate_duration(candidate) > MAX_WARNING_S:
                break
            if not parts and self.speaker.estimate_duration(text) > MAX_WARNING_S:
                text = self._group_text(g, members, with_distance=False) or text
            parts.append(text)
            named.extend(members)
        if not parts:
            return None
        if said is not None:
            said.extend(m.track_id for m in named)
            # The live groups left out (budget) are said in the next warning.
            named_ids = {m.track_id for m in named}
            with self._lock:
                self._leftover = [g for g, members in live if not {m.track_id for m in members} & named_ids]
        if mark:
            t = world.t_latest or 0.0
            for m in named:
                world.mark_told(m.track_id, t)
        return " ".join(p.rstrip(".") + "." for p in parts) if len(parts) > 1 else parts[0]

    def _members(self, group: WarningGroup, world: WorldModel, *, require_hazard: bool) -> list[ObjectState]:
        """The group's objects still tracked, seen recently and (if asked) still a hazard."""
        out = []
        latest = world.t_latest
        for tid in group.track_ids:
            rec = world.get(tid)
            if rec is None:
                continue
            if latest is not None and latest - rec.t_seen > self.cfg.warning_max_age_s:
                continue  # not seen for too long: whatever it was doing, it is not known now
            if require_hazard and not rec.hazard:
                continue
            out.append(rec)
        return out

    def _group_text(self, group: WarningGroup, members: list[ObjectState], *, with_distance: bool = True) -> str | None:
        if not members:
            return None
        lead = min(members, key=lambda m: m.distance_m)
        prox = max((m.proximity for m in members), key=PROXIMITY_ORDER.index)
        appr = any(m.approaching for m in members)
        dirs = [m.direction for m in members]
        direction = max(("left", "ahead", "right"), key=lambda d: (dirs.count(d), d == lead.direction))
        unit = self.cfg.distance_unit if with_distance else "none"
        return hazard_phrase(group.label, len(members), direction, prox, appr, self.language,
                             distance_m=lead.distance_m, clock=lead.clock, distance_unit=unit,
                             direction_style=self.cfg.direction_style)

    # ------------------------------------------------------------------ states
    def state(self, key: str, *, frame: int | None = None) -> str:
        """Say a state notice (``camera_lost``, ``hazards_back``, ...); returns its words.

        Notices that are a state of something (``STATE_OF_NOTICE``) replace any
        older state of the same thing; others are plain notifications.
        """
        text = notice(key, self.language)
        priority = Priority.MESSAGE if key in _URGENT_NOTICES else Priority.NOTIFICATION
        now = self._clock() if self._clock is not None else None
        self.speaker.say(text, priority, t_capture=now, frame=frame, state_key=STATE_OF_NOTICE.get(key))
        return text
