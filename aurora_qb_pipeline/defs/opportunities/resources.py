"""The opportunities resource: which Quickbase table holds the opportunities, the mapping, the
store (beside the webhook inbox) and, when the buttons are on, the secret that signs them."""

from __future__ import annotations

import threading
from typing import Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from ...clients import AuroraClient, QuickbaseClient
from ...opportunities.mapping import OpportunityFields, load_opportunity_mapping, resolve_opportunity_mapping
from ...opportunities.store import OpportunityStore
from ...opportunities.sync import OpportunitySync
from ...webhooks.inbox import Inbox


class OpportunitiesResource(dg.ConfigurableResource):
    """Quickbase opportunities that become Aurora projects."""

    table_id: str = Field(description="Opportunities table id (secret: an EnvVar, QB_OPPORTUNITIES_TABLE_ID).")
    store_url: str = Field(description="SQLAlchemy URL of the store (the webhook inbox database).")
    mapping_file: Optional[str] = Field(default=None, description="Opportunity mapping YAML (default: packaged).")
    button_secret: Optional[str] = Field(
        default=None, description="Signs the button URLs (secret: an EnvVar, AURORA_QB_WEBHOOK_SECRET); "
        "None: no signatures are written.")
    lease_s: float = Field(default=600.0, description="A claim older than this belongs to a dead attempt.")
    tenant: Optional[str] = Field(
        default=None, description="Many tenants: the tenant whose store tables (and button signatures) these are.")

    _store: Optional[OpportunityStore] = PrivateAttr(default=None)
    _fields: Optional[OpportunityFields] = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def store(self) -> OpportunityStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = OpportunityStore(self.store_url, self.lease_s, self.tenant)
        return self._store

    def table(self, quickbase: QuickbaseClient) -> QuickbaseClient:
        return quickbase.for_table(self.table_id)

    def fields(self, quickbase: QuickbaseClient) -> OpportunityFields:
        """The mapping, checked against GET /v1/fields of both tables (once per resource)."""
        if self._fields is None:
            config = load_opportunity_mapping(self.mapping_file)
            self._fields = resolve_opportunity_mapping(config, quickbase.table_fields(self.table_id),
                                                       quickbase.get_fields())
        return self._fields

    def sync(self, aurora: AuroraClient, quickbase: QuickbaseClient, inbox: Optional[Inbox], log_fn=None):
        kwargs = {"log_fn": log_fn} if log_fn else {}
        return OpportunitySync(aurora, self.table(quickbase), self.fields(quickbase), self.store, inbox,
                               self.button_secret, **kwargs)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
