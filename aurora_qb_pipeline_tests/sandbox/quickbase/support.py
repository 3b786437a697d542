"""Shared pieces of the Quickbase sandbox tests: the vendored spec and a validator of answers
against it, the ``Sandbox`` test client (fixtures in ``conftest.py``) and record builders.

Every 200/207 answer the tests receive through :meth:`Sandbox.call` is validated against the
response schema of its operation in ``quickbase_spec_subset.json`` (operations copied unmodified
from Quickbase's Swagger spec by ``extract_qb_spec.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import requests
from jsonschema import Draft4Validator

from aurora_qb_pipeline.sandbox.quickbase import QuickbaseState

SPEC = json.loads((Path(__file__).parent.parent / "quickbase_spec_subset.json").read_text(encoding="utf-8"))
CHOICES = ["REC Alpha Pure 400", "Qcells Q.PEAK DUO 405", "Canadian Solar HiKu 410"]
DESIGN_ID, PROJECT_NAME, SYSTEM_SIZE, MODULE_MODEL = 20, 6, 7, 9

# -- the spec ---------------------------------------------------------------------------------


def _without_extensions(node: Any) -> Any:
    """A schema with the MuleSoft ``x-amf-*`` extensions dropped (they are not JSON Schema)."""
    if isinstance(node, dict):
        return {k: _without_extensions(v) for k, v in node.items() if not k.startswith("x-amf-")}
    if isinstance(node, list):
        return [_without_extensions(v) for v in node]
    return node


def _operations() -> list[tuple[str, re.Pattern, dict]]:
    """(method, path pattern, operation) for every operation in the vendored spec."""
    found = []
    for path, item in SPEC["paths"].items():
        pattern = re.compile("^/v1" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        found += [(method.upper(), pattern, op) for method, op in item.items()]
    return found


OPERATION_TABLE = _operations()


def operation_for(method: str, path: str) -> dict:
    return next(op for m, pattern, op in OPERATION_TABLE if m == method and pattern.match(path))


def assert_matches_spec(response: requests.Response) -> None:
    request = response.request
    operation = operation_for(request.method, urlsplit(request.url).path)
    schema = _without_extensions(operation["responses"][str(response.status_code)]["schema"])
    json_answer = response.headers.get("content-type", "").startswith("application/json")
    Draft4Validator(schema).validate(response.json() if json_answer else response.text)


# -- the server -------------------------------------------------------------------------------


@dataclass
class Sandbox:
    state: QuickbaseState
    url: str
    session: requests.Session

    @property
    def headers(self) -> dict[str, str]:
        return {"QB-Realm-Hostname": self.state.realm, "Authorization": f"QB-USER-TOKEN {self.state.token}"}

    def call(
        self, method: str, path: str, headers: Optional[dict] = None, **kwargs: Any
    ) -> requests.Response:
        """One /v1 call; successful answers must match the spec."""
        response = self.session.request(
            method, f"{self.url}/v1{path}", headers=headers or self.headers, **kwargs
        )
        assert response.headers.get("qb-api-ray"), "every answer carries qb-api-ray"
        if response.status_code in (200, 207):
            assert_matches_spec(response)
        return response

    def upsert(self, records: list[dict[int, Any]], merge: Optional[int] = DESIGN_ID, **extra: Any):
        body = {
            "to": self.state.table_id,
            "data": [{str(k): {"value": v} for k, v in r.items()} for r in records],
        }
        if merge is not None:
            body["mergeFieldId"] = merge
        return self.call("POST", "/records", json={**body, **extra})

    def query(self, **body: Any) -> requests.Response:
        return self.call("POST", "/records/query", json={"from": self.state.table_id, **body})

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}/_sandbox{path}", **kwargs)


def design(n: int, values: Optional[dict[int, Any]] = None) -> dict[int, Any]:
    return {DESIGN_ID: f"des_{n}", PROJECT_NAME: f"Project {n}", SYSTEM_SIZE: n, **(values or {})}
