"""Runtime: one run of the pipeline, wired from the stage packages.

``pipeline`` (``run_pipeline``: start one run, supervise it from the main
thread, stop it), ``run`` (``RunWiring``, the stages of one run and the
policy between them), ``live`` and ``every_frame`` (the two ways to drive the
same stages), ``workers`` (supervised worker threads that own a model each),
``signals`` (``StopSignal``: Ctrl-C / SIGTERM), ``outputs`` (the overlay and
the saved video), ``options`` (``RunOptions``: what one run is asked to do;
``RunSeams``: the parts a benchmark or a fault injector passes in),
``observer`` (``RunObserver``, watching a run from outside), ``control``
(the user's commands: ``--control`` FIFO/file/stdin, terminal and window
keys) and ``errors``.

The runtime knows the stages' error types, never exit codes: the caller
passes the mapping (``assist.app.errors.exit_code``). Nothing below this
layer (core, capture, hazards, describe, speech) imports it. The stages are
held by their packages' protocols; the protocol of this layer is the
:class:`RunObserver` a caller may pass to watch a run.
"""

from __future__ import annotations

from assist.runtime.observer import NullRunObserver, RunObserver

__all__ = ["NullRunObserver", "RunObserver"]
