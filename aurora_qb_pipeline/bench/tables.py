"""Create a table declared in config/quickbase_tables/*.yaml through Quickbase's API (createTable,
createField, updateField for unique/required, createRelationship for the parent reference), as
`aurora-qb quickbase init` will; the benchmark and the tests use it until that command lands."""

from __future__ import annotations

import requests


def create_declared_table(sandbox, spec: dict, parent_table_id: str) -> str:
    """The new table's id; ``sandbox``: a running :class:`..sandbox.launcher.Sandbox`."""
    env = sandbox.env()
    base = env["QB_BASE_URL"].rstrip("/") + "/v1"
    headers = {"QB-Realm-Hostname": env["QB_REALM_HOSTNAME"], "Authorization": f"QB-USER-TOKEN {env['QB_USER_TOKEN']}"}

    def call(method, path, params=None, body=None):
        resp = requests.request(method, base + path, params=params, json=body, headers=headers, timeout=10)
        if resp.status_code != 200:
            raise RuntimeError(f"Quickbase {method} {path} -> {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    table = call("POST", "/tables", {"appId": env["QB_APP_ID"]},
                 {"name": spec["name"], "description": spec.get("description", "")})
    table_id = table["id"]
    for fdef in spec["fields"]:
        created = call("POST", "/fields", {"tableId": table_id}, {"label": fdef["label"], "fieldType": fdef["type"]})
        flags = {k: True for k in ("unique", "required") if fdef.get(k)}
        if flags:
            call("POST", f"/fields/{created['id']}", {"tableId": table_id}, flags)
    call("POST", f"/tables/{table_id}/relationship", None,
         {"parentTableId": parent_table_id, "foreignKeyField": {"label": spec["parent"]["reference_field"]}})
    return table_id
