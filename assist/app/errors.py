"""The one table from the stages' errors to the documented exit codes
(README, "When things go wrong"; ../shared/DESIGN.md). Every stage raises its
own typed error with a one-line message that names the problem and the fix;
only this module knows which exit code it becomes."""

from __future__ import annotations

from assist.app import exitcodes
from assist.capture.errors import SourceError
from assist.config import ConfigError
from assist.describe.errors import CaptionModelMissing
from assist.hazards.errors import DetectorModelMissing
from assist.runtime.control import ControlError
from assist.runtime.errors import InternalError, OutputUnavailable
from assist.speech.backends import SpeechBackendUnavailable


class CliError(Exception):
    """A usage error found by the command line itself, with its exit code; the
    message is the one line to print."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


#: Stage error -> exit code, first match wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, exitcodes.USAGE),
    (OutputUnavailable, exitcodes.USAGE),  # --log cannot be opened
    (ControlError, exitcodes.USAGE),  # --control names nothing readable
    (SpeechBackendUnavailable, exitcodes.USAGE),  # an explicitly chosen backend that cannot work here
    (SourceError, exitcodes.SOURCE),
    (DetectorModelMissing, exitcodes.MODEL),
    (CaptionModelMissing, exitcodes.MODEL),
    (InternalError, exitcodes.INTERNAL),
)


def exit_code(outcome: BaseException | None) -> int | None:
    """The exit code for how a run ended: OK for None, the table's code for a
    stage error (or a CliError's own), None for an error nobody declares (a bug)."""
    if outcome is None:
        return exitcodes.OK
    if isinstance(outcome, CliError):
        return outcome.code
    for kind, code in EXIT_CODES:
        if isinstance(outcome, kind):
            return code
    return None


__all__ = ["EXIT_CODES", "CliError", "exit_code"]
