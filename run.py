#!/usr/bin/env python3
"""Entry point: ``python run.py --camera 0`` (see README.md or --help)."""

import sys

from assist.cli import main

if __name__ == "__main__":
    sys.exit(main())
