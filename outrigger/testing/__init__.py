"""The test harness every service's tests share: tokens, unique names, an audit inbox, the
contract-suite base, serving an app on a free port, and an SSE reader; `outrigger.testing.servers`
starts private PostgreSQL, Redis and RabbitMQ instances for the tests that break a server.

Test code only: it imports pytest and is never imported by a service.
"""

from outrigger.testing.audit import AuditInbox, audit_inbox
from outrigger.testing.contract import ContractSuite
from outrigger.testing.names import unique
from outrigger.testing.serving import free_port, serving
from outrigger.testing.sse import EndOfStream, SseReader
from outrigger.testing.tokens import bearer

__all__ = [
    "AuditInbox",
    "ContractSuite",
    "EndOfStream",
    "SseReader",
    "audit_inbox",
    "bearer",
    "free_port",
    "serving",
    "unique",
]
