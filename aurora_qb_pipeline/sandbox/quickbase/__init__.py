"""A loopback emulator of the Quickbase JSON RESTful API (the part this project uses).

It follows Quickbase's published Swagger spec and what has been observed on the wire: the header
checks and their order, AJV-style 400 texts, upsert with ``mergeFieldId`` and 207 answers with
1-based ``lineErrors``, runQuery with the Quickbase query language and size-capped pages,
deleteRecords, fields (incl. checkbox, file attachment, formula), tables (create, update),
relationships with lookup and summary fields, the table report list, file download/delete and
user-token deactivation. Where the real behaviour is unknown the choice is marked GUESS; where
the sandbox goes beyond the API (``/_sandbox/...`` routes, the Python helpers) it says so.

Modules: :mod:`.errors` (error answers), :mod:`.bodies` (request validation), :mod:`.fields`,
:mod:`.values` (coercion, file versions, clock), :mod:`.table` (schema and storage),
:mod:`.records` (the record engine), :mod:`.derived`, :mod:`.formula`, :mod:`.relationships`,
:mod:`.query` (the query language), :mod:`.auth`, :mod:`.state` (``QuickbaseState``),
:mod:`.api_records` / :mod:`.api_schema` (``/v1``), :mod:`.admin` (``/_sandbox/quickbase``),
:mod:`.app` (``create_app``)::

    state = QuickbaseState.with_design_table(["REC Alpha 400", "Qcells Q.PEAK 405"])
    with ServerThread(create_app(state)) as server:
        ...  # base URL server.url + "/v1", headers QB-Realm-Hostname: state.realm,
             # Authorization: QB-USER-TOKEN <state.token>, table state.table_id
"""

from .app import create_app
from .errors import QuickbaseError
from .fields import QbField
from .models import SANDBOX_ADMIN, QbApp, QbUser, UpsertResult
from .query import QueryError, compile_where
from .state import (
    DEFAULT_PAGE_CAP,
    DEFAULT_REALM,
    DESIGN_FIELDS,
    DESIGN_ID_FIELD,
    DESIGN_TABLE_NAME,
    MODULE_MODEL_FIELD,
    QuickbaseState,
)
from .table import QbTable
from .values import FileVersion

__all__ = [
    "DEFAULT_PAGE_CAP",
    "DEFAULT_REALM",
    "DESIGN_FIELDS",
    "DESIGN_ID_FIELD",
    "DESIGN_TABLE_NAME",
    "MODULE_MODEL_FIELD",
    "SANDBOX_ADMIN",
    "FileVersion",
    "QbApp",
    "QbField",
    "QbTable",
    "QbUser",
    "QueryError",
    "QuickbaseError",
    "QuickbaseState",
    "UpsertResult",
    "compile_where",
    "create_app",
]
