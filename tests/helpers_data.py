"""The one way a test says that something it needs is not on this machine.

Locally a test whose data (shared photos, footage, detector weights), program
(espeak-ng) or package is missing skips with the reason. CI sets
``ASSIST_REQUIRE_DATA=1`` (``.ci/run``): there the same test fails with the
same reason, so a run without ``../shared`` or without espeak-ng cannot pass
green with a third of the suite skipped in silence.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

REQUIRE_DATA_ENV = "ASSIST_REQUIRE_DATA"

# Tests that speak through the real espeak-ng binary (fixture in conftest.py).
needs_espeak = pytest.mark.usefixtures("espeak_available")


def data_required() -> bool:
    """True when missing test data must fail the run (``ASSIST_REQUIRE_DATA=1``, set by CI)."""
    return os.environ.get(REQUIRE_DATA_ENV, "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip the current test because ``reason`` (what is missing and how to get it);
    under ``ASSIST_REQUIRE_DATA=1`` fail it with that reason instead."""
    if data_required():
        pytest.fail(f"{reason} [{REQUIRE_DATA_ENV}=1: missing test data fails the run instead of skipping]",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # module level too: a module-wide requirement


def require_module(name: str, hint: str = "") -> ModuleType:
    """Import ``name`` for a test, or go through :func:`missing` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = str(exc)
    missing(f"{name} is not installed ({error}){'; ' + hint if hint else ''}")  # outside except: no chained trace
