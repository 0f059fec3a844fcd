"""What the end-to-end tests share: a RabbitMQ vhost of their own."""

from __future__ import annotations

import subprocess
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.deploy.support import tool

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def vhost(amqp_url: str) -> Iterator[str]:
    """A fresh RabbitMQ vhost, so queues and messages of other tests stay apart; its AMQP URL."""
    name = f"outrigger-e2e-{uuid.uuid4().hex[:10]}"
    user = urlsplit(amqp_url).username or "guest"
    rabbitmqctl = tool("rabbitmqctl")
    for command in (["add_vhost", name], ["set_permissions", "-p", name, user, ".*", ".*", ".*"]):
        result = subprocess.run(
            [rabbitmqctl, "-q", *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    try:
        yield urlunsplit(urlsplit(amqp_url)._replace(path=f"/{name}"))
    finally:
        subprocess.run(
            [rabbitmqctl, "-q", "delete_vhost", name], capture_output=True, timeout=60, check=False
        )
