"""The event store's use-case room: every request, subscription and background job passes here.

`EventStoreService` serves the API; `LogSubscriptions` the SSE subscriptions; `Relay` publishes
the log to the bus; `Sequencer` fills a `SequencedLog`; `LogGauges` refreshes the gauges.
"""

from services.event_store.usecases.gauges import LogGauges
from services.event_store.usecases.log_tail import LogTail
from services.event_store.usecases.relay import Relay
from services.event_store.usecases.sequencer import Sequencer
from services.event_store.usecases.service import Caller, EventStoreService
from services.event_store.usecases.shredding import SubjectShredder
from services.event_store.usecases.subscriptions import Dropped, Live, LogSubscriptions

__all__ = [
    "Caller",
    "Dropped",
    "EventStoreService",
    "Live",
    "LogGauges",
    "LogSubscriptions",
    "LogTail",
    "Relay",
    "Sequencer",
    "SubjectShredder",
]
