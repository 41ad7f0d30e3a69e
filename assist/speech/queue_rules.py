"""What a new utterance does to the others: the speech arbiter's queue rules as pure functions.

Kept apart from ``assist.speech.arbiter`` (which owns the queue, the clock,
the backend and the events) so that each rule reads in one place and can be
changed without touching the machinery. The levels and what each rule is for
are in the arbiter's module doc.
"""

from __future__ import annotations

from assist.core.priority import Priority
from assist.speech.queued import QueuedItem


def same_state(new: QueuedItem, old: QueuedItem) -> bool:
    """Whether ``new`` is a newer state of the thing ``old`` is a state of (same ``state_key``)."""
    return new.state_key is not None and old.state_key == new.state_key


def supersedes(new: QueuedItem, old: QueuedItem) -> bool:
    """Whether ``new`` makes the queued ``old`` pointless: a newer state of the same thing
    (same ``state_key``, or a subject in common)."""
    return same_state(new, old) or bool(new.subjects and old.subjects and new.subjects & old.subjects)


def fate_of_queued(new: QueuedItem, old: QueuedItem, first_description: bool) -> str | None:
    """Why the queued ``old`` is dropped when ``new`` is queued (``superseded`` or
    ``cancelled``), or None when it stays. ``first_description``: ``old`` is the
    run's first description, which waits for warnings instead of being cancelled."""
    priority = new.priority
    if supersedes(new, old):
        return "superseded"
    if old.state_key is not None:
        return None  # a state is only ever replaced by a newer state of the same thing
    if old.asked and old.priority >= Priority.TEXT:
        return None  # the user asked for it: only played or expired
    if first_description and priority <= Priority.MESSAGE:
        return None  # the first description waits for the warning
    if priority <= Priority.MESSAGE and old.priority >= Priority.TEXT:
        return "cancelled"
    if priority == Priority.TEXT and old.priority == Priority.TEXT:
        return "superseded"  # a newer view described
    if priority < Priority.NOTIFICATION and old.priority == Priority.NOTIFICATION:
        return "cancelled"
    return None


def cuts_off(new: QueuedItem, cur: QueuedItem) -> bool:
    """Whether ``new`` interrupts the playing ``cur``: a newer state of the same thing, an
    urgent warning over anything less, a warning over a description or notice, anything
    over a notice, and what the user asked for over a description or notice."""
    priority = new.priority
    return (same_state(new, cur)
            or (priority == Priority.IMPORTANT and cur.priority > Priority.IMPORTANT)
            or (priority == Priority.MESSAGE and cur.priority >= Priority.TEXT)
            or (cur.priority == Priority.NOTIFICATION and priority < Priority.NOTIFICATION)
            or (new.asked and cur.priority >= Priority.TEXT))
