"""``QuickbaseState``: realm, user tokens, apps, tables, and the Python-side helpers that tests,
launchers and the ``/_sandbox`` routes use to provision and change them (as an app admin
would in the Quickbase UI, without HTTP or rate limits)."""

from __future__ import annotations

import random
import string
import threading
from typing import Any, Optional

from ...api_facts import QUICKBASE_MAX_REQUEST_BYTES, QUICKBASE_RATE_LIMIT
from ..common import SandboxConfig, SandboxState
from . import records as engine
from .auth import authenticate
from .errors import QuickbaseError, not_found
from .fields import QbField
from .models import SANDBOX_ADMIN, LineError, QbApp, QbUser, UpsertResult
from .table import QbTable
from .values import Clock

DEFAULT_REALM = "sandbox.quickbase.com"
DEFAULT_PAGE_CAP = 1000  # records per runQuery page ("intelligent pagination" stand-in)

DESIGN_TABLE_NAME = "Aurora Designs"
# (fid, label, type) of the user fields of the Aurora design table; fid 11 is not used.
DESIGN_FIELDS: list[tuple[int, str, str]] = [
    (6, "Project Name", "text"),
    (7, "System Size (kW)", "numeric"),
    (8, "Number of Modules", "numeric"),
    (9, "Module Model", "text-multiple-choice"),
    (10, "Annual Energy (kWh)", "numeric"),
    (12, "Street Address", "text"),
    (13, "Street Address 2", "text"),
    (14, "City", "text"),
    (15, "State", "text"),
    (16, "Postal Code", "text"),
    (17, "Country", "text"),
    (18, "Azimuth", "numeric"),
    (19, "Proposal Link", "url"),
    (20, "Aurora Design ID", "text"),
    (21, "Aurora Project ID", "text"),
    (22, "Design Name", "text"),
    (23, "State Name", "text"),
    (24, "Array Count", "numeric"),
]
DESIGN_ID_FIELD = 20
MODULE_MODEL_FIELD = 9
# the record's own sync status the pipeline may write (issue 11), added last so earlier ids stay
SYNC_STATUS_FIELDS: list[tuple[str, str]] = [
    ("Aurora Sync Status", "text-multiple-choice"), ("Aurora Sync Problem", "text-multi-line"),
    ("Aurora Last Synced", "timestamp"),
]
SYNC_STATUS_CHOICES = ["Synced", "Held back", "Not sent"]

_DBID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
SETTINGS = ("page_cap", "max_body_bytes", "refuse_unknown_body_keys", "truncate_upsert_answers")


class QuickbaseState(SandboxState):
    """Everything the Quickbase emulator knows: realm, tokens, apps, tables, fields and records.

    All ids (apps, tables, tokens) are derived from ``seed``. ``app_id``, ``table_id`` and ``token``
    name the ones provisioned first (set by :meth:`with_design_table`). Quickbase-specific
    settings (``PUT /_sandbox/quickbase``): ``page_cap`` (most records one runQuery page
    returns), ``max_body_bytes`` (largest request body; 413 above), ``refuse_unknown_body_keys``
    (see :mod:`.bodies`) and ``truncate_upsert_answers`` (the next N upserts are applied but
    their answers cut short). Every method is safe while the server runs: they hold :attr:`lock`.
    """

    def __init__(
        self,
        config: Optional[SandboxConfig] = None,
        *,
        realm: str = DEFAULT_REALM,
        seed: int = 0,
        page_cap: int = DEFAULT_PAGE_CAP,
        max_body_bytes: int = QUICKBASE_MAX_REQUEST_BYTES,
    ) -> None:
        limit = QUICKBASE_RATE_LIMIT
        super().__init__(config or SandboxConfig(rate_limit=limit.requests, rate_window_s=limit.window_s))
        self.realm = realm
        self.page_cap = page_cap
        self.max_body_bytes = max_body_bytes
        self.refuse_unknown_body_keys = True
        self.truncate_upsert_answers = 0
        self.lock = threading.RLock()
        self.clock = Clock()
        self.apps: dict[str, QbApp] = {}
        self.tables: dict[str, QbTable] = {}
        self.users: dict[str, QbUser] = {}  # active user token -> user
        self.app_id: Optional[str] = None
        self.table_id: Optional[str] = None
        self.token: Optional[str] = None
        self.opportunities_table_id: Optional[str] = None
        self._ids = random.Random(f"quickbase-sandbox:{seed}")
        self._token_count = 0

    @classmethod
    def with_design_table(
        cls, module_choices: list[str], seed: int = 0, config: Optional[SandboxConfig] = None,
        opportunities: bool = False, sync_status_fields: bool = True,
    ) -> "QuickbaseState":
        """A realm with one app, the "Aurora Designs" table and a token allowed on the app; with
        ``opportunities``, also the Opportunities table related to it (issue 14, see
        :mod:`.opportunities`)."""
        state = cls(config, seed=seed)
        app = state.add_app("Aurora Solar Sync", "Designs synced from Aurora Solar.")
        table = state.add_design_table(app.id, module_choices)
        state.app_id, state.table_id = app.id, table.id
        state.token = state.add_token([app.id])
        if opportunities:
            from .opportunities import add_opportunities_table  # after the token: earlier ids stay as they were

            state.opportunities_table_id = add_opportunities_table(state, app.id, table.id)
        if sync_status_fields:
            for label, field_type in SYNC_STATUS_FIELDS:
                added = state.add_field(table.id, label, field_type)
                if field_type == "text-multiple-choice":
                    state.update_field(table.id, added.id, properties={"choices": SYNC_STATUS_CHOICES,
                                                                       "allowNewChoices": False})
        return state

    def add_design_table(self, app_id: str, module_choices: list[str], name: str = DESIGN_TABLE_NAME) -> QbTable:
        """An "Aurora Designs" table in ``app_id`` (one more per Aurora tenant a realm serves)."""
        table = self.add_table(app_id, name, single_record_name="Design", plural_record_name="Designs")
        for fid, label, field_type in DESIGN_FIELDS:
            self.add_field(table.id, label, field_type, fid=fid)
        self.update_field(table.id, MODULE_MODEL_FIELD,
                          properties={"choices": list(module_choices), "allowNewChoices": False})
        self.update_field(table.id, DESIGN_ID_FIELD, unique=True, required=True)
        return table

    # -- settings ------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTINGS}

    def update_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        unknown = set(values) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown Quickbase sandbox setting(s): {', '.join(sorted(unknown))}")
        with self.lock:
            for name, value in values.items():
                if not isinstance(value, type(getattr(self, name))):
                    raise ValueError(f"{name} should be {type(getattr(self, name)).__name__}")
                setattr(self, name, value)
            return self.settings()

    def take_truncated_upsert(self) -> bool:
        with self.lock:
            if self.truncate_upsert_answers > 0:
                self.truncate_upsert_answers -= 1
                return True
            return False

    # -- provisioning --------------------------------------------------------------------------

    def _random_text(self, length: int, alphabet: str = _TOKEN_ALPHABET) -> str:
        return "".join(self._ids.choice(alphabet) for _ in range(length))

    def _dbid(self) -> str:
        return "b" + self._random_text(8, _DBID_ALPHABET)

    def add_app(self, name: str, description: str = "") -> QbApp:
        with self.lock:
            app = QbApp(id=self._dbid(), name=name, created=self.clock.now(), description=description)
            self.apps[app.id] = app
            return app

    def add_table(self, app_id: str, name: str, **attributes: Any) -> QbTable:
        """A new table in ``app_id``; attributes: description, single_record_name, plural_record_name."""
        with self.lock:
            if app_id not in self.apps:
                raise not_found(f"Application {app_id} does not exist.")
            attributes = {key: value for key, value in attributes.items() if value is not None}
            table = QbTable(self._dbid(), app_id, name, self.clock, self.tables, self.realm, **attributes)
            self.tables[table.id] = table
            self.apps[app_id].table_ids.append(table.id)
            return table

    def add_field(self, table_id: Optional[str], label: str, field_type: str, **attributes: Any) -> QbField:
        """Add a field (``fid=`` to choose its id); attributes as in getFields, snake_case."""
        with self.lock:
            return self.table(table_id).add_field(label, field_type, **attributes)

    def update_field(self, table_id: Optional[str], fid: int, **changes: Any) -> QbField:
        """Change a field as updateField would (e.g. ``unique=False``, ``properties={...}``)."""
        with self.lock:
            return self.table(table_id).update_field(fid, **changes)

    def change_field_type(self, table_id: Optional[str], fid: int, field_type: str) -> QbField:
        """Retype a field as an admin can in the UI (not through the API); see QbTable."""
        with self.lock:
            return self.table(table_id).change_field_type(fid, field_type)

    def delete_field(self, table_id: Optional[str], fid: int) -> None:
        with self.lock:
            table = self.table(table_id)
            table.get_field(fid)
            if table.delete_fields([fid])["errors"]:
                raise QuickbaseError(400, f"Field {fid} is built in and cannot be deleted.")

    def add_token(self, app_ids: list[str], email: Optional[str] = None) -> str:
        """A new user token (``b7k2xq_ab1c_0_d3fg...``) for a new user, allowed on ``app_ids``."""
        with self.lock:
            self._token_count += 1
            n = self._token_count
            user_id = f"{self._ids.randrange(10**7, 10**8)}.{self._random_text(4)}"
            token = f"{self._random_text(6)}_{self._random_text(4)}_0_{self._random_text(26)}"
            email = email or f"sync.user{n}@example.com"
            self.users[token] = QbUser(user_id, email, f"Sync User {n}", set(app_ids), token_id=n)
            return token

    def revoke_token(self, token: str) -> QbUser:
        """Deactivate a user token: every later request with it gets 401."""
        with self.lock:
            user = self.users.pop(token, None)
            if user is None:
                raise not_found("No such active user token.")
            return user

    # -- access checks -------------------------------------------------------------------------

    def authenticate(self, authorization: Optional[str], realm: Optional[str]) -> QbUser:
        with self.lock:
            return authenticate(self.users, self.realm, authorization, realm)

    def app_for(self, user: QbUser, app_id: str) -> QbApp:
        app = self.apps.get(app_id)
        if app is None:
            raise QuickbaseError(404, f"Application {app_id} does not exist.", message="Invalid DBID")
        if app.id not in user.app_ids:
            raise QuickbaseError(
                403, "Your user token is not assigned to this application.", message="Access denied"
            )
        return app

    def table_for(self, user: QbUser, table_id: str) -> QbTable:
        table = self.tables.get(table_id)
        if table is None:
            raise QuickbaseError(404, f"Table {table_id} does not exist.", message="Invalid DBID")
        self.app_for(user, table.app_id)
        return table

    # -- Python accessors (tests, launchers, /_sandbox routes) ---------------------------------

    def table(self, table_id: Optional[str] = None) -> QbTable:
        table = self.tables.get(table_id or self.table_id or "")
        if table is None:
            raise not_found(f"Table {table_id} does not exist.")
        return table

    def records(self, table_id: Optional[str] = None) -> list[dict[int, Any]]:
        """Copies of the stored records (``{fid: value}``, empty fields as None), by record id.
        File attachments are lists of :class:`.values.FileVersion`; derived fields are absent."""
        with self.lock:
            return [dict(row) for _, row in sorted(self.table(table_id).rows.items())]

    def field_by_label(self, table_id: Optional[str], label: str) -> QbField:
        with self.lock:
            return next(f for f in self.table(table_id).fields.values() if f.label == label)

    def add_records(
        self, table_id: Optional[str], records: list[dict[int, Any]], merge_field_id: Optional[int] = None
    ) -> UpsertResult:
        """Upsert ``{fid: value}`` records directly (no HTTP, no rate limit), as the sandbox admin."""
        rows = [{str(fid): {"value": value} for fid, value in record.items()} for record in records]
        with self.lock:
            return engine.upsert(self.table(table_id), rows, merge_field_id, SANDBOX_ADMIN)

    def edit_record(self, table_id: Optional[str], record_id: int, values: dict[int, Any]) -> str:
        """A hand edit of one record by the sandbox admin: Date Modified and Last Modified By move.
        Returns "updated" or "unchanged"; raises QuickbaseError (400) if a value is refused."""
        with self.lock:
            try:
                return engine.edit(self.table(table_id), record_id, values, SANDBOX_ADMIN)
            except LineError as exc:
                raise QuickbaseError(400, " ".join(exc.messages)) from None

    def delete_records(self, table_id: Optional[str], where: Any) -> int:
        """Delete records by query string or record-id list, as deleteRecords would."""
        with self.lock:
            return engine.delete(self.table(table_id), where)

    def clear_records(self, table_id: Optional[str] = None, *, reset_record_ids: bool = False) -> int:
        """Delete every record; with ``reset_record_ids`` the next record gets id 1 again
        (something only a sandbox can do: Quickbase never reuses record ids)."""
        with self.lock:
            table = self.table(table_id)
            deleted = engine.delete(table, None)
            if reset_record_ids:
                table.next_record_id = 1
            return deleted

    def file_content(self, table_id: Optional[str], record_id: int, field_id: int, version: int) -> bytes:
        """The bytes of one version of a file attachment."""
        with self.lock:
            return engine.file_version(self.table(table_id), record_id, field_id, version).content

    def describe(self) -> dict[str, Any]:
        """Apps, tables (with record counts) and users of active tokens (``/_sandbox/quickbase/state``)."""
        with self.lock:
            return {
                "realm": self.realm,
                "apps": [
                    {
                        "id": app.id,
                        "name": app.name,
                        "tables": [
                            {"id": t, "name": self.tables[t].name, "records": len(self.tables[t].rows)}
                            for t in app.table_ids
                        ],
                    }
                    for app in self.apps.values()
                ],
                "users": [
                    {"id": u.id, "email": u.email, "tokenId": u.token_id, "appIds": sorted(u.app_ids)}
                    for u in self.users.values()
                ],
            }
