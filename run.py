#!/usr/bin/env python3
"""Entry point: ``python run.py --camera 0`` (see README.md or --help)."""

import os
import sys

from assist.app.cli import main

if __name__ == "__main__":
    code = main()
    # By now the event log, the saved video and the speech children are closed
    # and flushed. Python's normal exit would then spend ~0.5-1 s tearing down
    # torch and OpenVINO, which breaks the promise that Ctrl-C / SIGTERM ends
    # the run within a second (measured in tests/test_signals.py); skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
