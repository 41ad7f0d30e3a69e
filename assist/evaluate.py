"""``python -m assist.evaluate``: kept because the README shows it; the command lives
in :mod:`assist.training.evaluate`."""

import sys

from assist.training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
