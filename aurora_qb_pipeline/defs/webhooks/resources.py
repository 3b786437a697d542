"""The webhook inbox as a Dagster resource (its URL is configuration, not a secret)."""

from __future__ import annotations

import threading
from typing import Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from ...webhooks.inbox import Inbox


class WebhookInboxResource(dg.ConfigurableResource):
    """The durable inbox the webhook receiver appends to (SQLite under DAGSTER_HOME, or Postgres)."""

    url: str = Field(description="SQLAlchemy URL of the inbox database (no password: PGPASSWORD or ~/.pgpass).")

    _inbox: Optional[Inbox] = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def inbox(self) -> Inbox:
        """The inbox, opened (and its tables created) on first use."""
        if self._inbox is None:
            with self._lock:
                if self._inbox is None:
                    self._inbox = Inbox(self.url)
        return self._inbox

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None
