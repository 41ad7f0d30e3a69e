"""``python -m assist.train``: kept because the README shows it; the command lives
in :mod:`assist.training.train`."""

import sys

from assist.training.train import main

if __name__ == "__main__":
    sys.exit(main())
