"""When a measured hazard state becomes the state that is spoken: evidence over time, not a count of runs.

The detector now runs at up to the camera's rate (bench/RESULTS.md: 3-20 ms a run), so a fixed count
of confirming runs means a different time at every rate, and ignores how sure each run was. Here a
candidate state (a proximity band, "approaching", a track being there at all) is confirmed once the
detections that back it within the last ``window`` seconds add up to ``evidence`` in detector
confidence:

- ``evidence`` above 1.0 means that no single run, however confident, is ever spoken: a one-frame
  false detection stays silent at every rate (the flicker test of bench/run.py and
  tests/test_confirm.py);
- at 30 Hz two confident runs (0.6 + 0.6) confirm in 33 ms; weak detections (0.3) need four;
- the window is at least ``min_periods`` detector periods long, so a slow detector (a few Hz) still
  sees enough runs, while runs older than the window stop counting: a detection every half second
  that never repeats quickly (a flickering false positive) never adds up;
- a run that measures the confirmed value again clears the candidate (one noisy run never changes
  a state), and a run that measures another candidate starts that candidate afresh.

``evidence = 0`` keeps the old rule: ``count`` consecutive runs (``hazards.confirm_frames``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_EVIDENCE = 1.2
DEFAULT_WINDOW_S = 0.4
MIN_PERIODS = 2.5  # the window spans at least this many detector periods


@dataclass(frozen=True)
class ConfirmRule:
    """How much backing a new state needs: ``evidence`` (sum of confidences) within ``window_s`` seconds,
    or, when ``evidence`` is 0, ``count`` consecutive runs."""

    evidence: float = DEFAULT_EVIDENCE
    window_s: float = DEFAULT_WINDOW_S
    count: int = 3

    @classmethod
    def from_config(cls, cfg: object) -> ConfirmRule:
        """The rule of a HazardConfig (``confirm_evidence``, ``confirm_window_s``, ``confirm_frames``, ``rate_hz``)."""
        rate = float(getattr(cfg, "rate_hz", 0) or 0)
        window = float(getattr(cfg, "confirm_window_s", DEFAULT_WINDOW_S))
        if rate > 0:
            window = max(window, MIN_PERIODS / rate)
        return cls(evidence=float(getattr(cfg, "confirm_evidence", DEFAULT_EVIDENCE)), window_s=window,
                   count=int(getattr(cfg, "confirm_frames", 3)))


@dataclass
class Confirmed:
    """A value that changes only when a different candidate gathered enough backing (see the module doc)."""

    value: object = None
    candidate: object = None
    support: deque[tuple[float, float]] = field(default_factory=deque)  # (time, confidence) backing the candidate

    def push(self, raw: object, t: float, confidence: float, rule: ConfirmRule) -> bool:
        """Feed one run's measurement ``raw`` at time ``t`` with the detection's confidence; True when
        the confirmed value changed."""
        if raw == self.value:
            self.candidate = None
            self.support.clear()
            return False
        if raw != self.candidate:
            self.candidate = raw
            self.support.clear()
        self.support.append((t, max(0.0, float(confidence))))
        if rule.evidence > 0:
            while self.support and t - self.support[0][0] > rule.window_s:
                self.support.popleft()
            enough = sum(c for _, c in self.support) >= rule.evidence
        else:
            enough = len(self.support) >= rule.count
        if enough:
            self.value, self.candidate = raw, None
            self.support.clear()
            return True
        return False

    @property
    def backing(self) -> float:
        """The confidence gathered so far by the current candidate (0 without one)."""
        return sum(c for _, c in self.support)


def min_runs(cfg: object) -> int:
    """Consecutive runs a track needs before it can be spoken or counted in a group: 2 under the evidence rule
    (evidence above 1 can never come from one run), ``confirm_frames`` under the count rule."""
    if float(getattr(cfg, "confirm_evidence", DEFAULT_EVIDENCE)) > 0:
        return 2
    return int(getattr(cfg, "confirm_frames", 3))
