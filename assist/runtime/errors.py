"""The runtime's own errors (only ``assist.app.errors`` turns them into exit codes)."""

from __future__ import annotations


class OutputUnavailable(Exception):
    """An output the run was asked for (``--log``) cannot be opened; the
    message names the flag, the path and the reason."""


class InternalError(Exception):
    """An error no stage declares ended the run: a bug (the caller reports it
    with the log); ``cause`` is the original exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


__all__ = ["InternalError", "OutputUnavailable"]
