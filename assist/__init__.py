"""Assistive camera agent: spoken hazard warnings and scene descriptions.

A folder per stage, in the order a frame flows: ``capture`` (camera, video,
images -> frames), ``hazards`` (detect, track, decide warnings), ``describe``
(scene gate, captioner, caption text), ``speech`` (arbiter, TTS backends,
phrases); ``core`` holds what they all share (frames, clock, event log,
detection records, priorities). ``runtime`` wires the stages into one run,
``app`` is the command line on top (and the one place that knows exit codes),
``training`` trains and evaluates the captioner. ``config`` is the strict
config schema. Lower layers never import ``runtime`` or ``app``.
"""

__version__ = "0.1.0"
