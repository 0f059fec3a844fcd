"""The one contract suite of the event-store port, run against every adapter.

A subclass implements `make_store()`; everything else is shared (eventsourcing's
`tests/persistence.py` pattern). Tests use fresh stream ids (and categories for log assertions),
so they never depend on each other or on what else the database holds.
"""

from __future__ import annotations

from tests.event_store.suite_append import AppendSuite
from tests.event_store.suite_log import LogSuite
from tests.event_store.suite_reads import ReadSuite


class EventStoreContract(AppendSuite, ReadSuite, LogSuite):
    """Appends, reads, retention, deletes, snapshots, the global log and checkpoints."""
