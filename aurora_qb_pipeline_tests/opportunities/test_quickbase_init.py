"""``aurora-qb quickbase init`` against the Quickbase sandbox: an empty app gets the designs and
opportunities tables, their fields, choice lists, unique merge field, relationship and buttons;
the plan changes nothing without --apply; a second run finds nothing to do; the mappings then
fit the tables."""

from aurora_qb_pipeline.cli import main
from aurora_qb_pipeline.clients import QuickbaseClient
from aurora_qb_pipeline.mapping import load_mapping, resolve_mapping
from aurora_qb_pipeline.opportunities.mapping import load_opportunity_mapping, resolve_opportunity_mapping


def _env_file(tmp_path, sandbox, app_id, token, **extra):
    values = {"QB_BASE_URL": sandbox.quickbase_url, "QB_REALM_HOSTNAME": sandbox.quickbase.realm,
              "QB_USER_TOKEN": token, "QB_APP_ID": app_id, "AURORA_QB_TIME_SCALE": "0.01",
              "AURORA_QB_RATE_LIMIT_DB": str(tmp_path / "rate.sqlite"), **extra}
    path = tmp_path / "init.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return str(path)


def test_init_creates_what_the_mappings_need_in_an_empty_app(sandbox, tmp_path, capsys):
    qb = sandbox.quickbase
    app = qb.add_app("New CRM app")
    token = qb.add_token([app.id])
    env_file = _env_file(tmp_path, sandbox, app.id, token)
    receiver = "https://hooks.example.com"

    assert main(["quickbase", "init", "--env-file", env_file, "--receiver-url", receiver]) == 0
    out = capsys.readouterr().out
    assert "create table" in out and "create relationship" in out and "nothing changed" in out
    assert qb.apps[app.id].table_ids == []  # the plan alone changes nothing

    assert main(["quickbase", "init", "--env-file", env_file, "--receiver-url", receiver, "--apply"]) == 0
    out = capsys.readouterr().out
    tables = {qb.tables[t].name: t for t in qb.apps[app.id].table_ids}
    assert {"Aurora Designs", "Opportunities"} <= set(tables)  # and what other specs add (site surveys)
    assert f"QB_OPPORTUNITIES_TABLE_ID={tables['Opportunities']}" in out

    assert main(["quickbase", "init", "--env-file", env_file, "--receiver-url", receiver]) == 0
    assert "Nothing to do" in capsys.readouterr().out

    client = QuickbaseClient(base_url=sandbox.quickbase_url, realm_hostname=qb.realm, user_token=token,
                             table_id=tables["Aurora Designs"])
    try:
        design_fields = client.get_fields()
        merge = next(f for f in design_fields if f["label"] == "Aurora Design ID")
        assert merge["unique"] and merge["required"]
        resolve_mapping(load_mapping(), design_fields)
        opp_fields = client.table_fields(tables["Opportunities"])
        resolved = resolve_opportunity_mapping(load_opportunity_mapping(), opp_fields, design_fields)
        status = next(f for f in opp_fields if f["label"] == "Aurora Sync Status")
        assert status["properties"]["choices"] == ["project created", "design requested", "error"]
        button = next(f for f in opp_fields if f["label"] == "Create in Aurora")
        assert button["mode"] == "formula" and receiver in button["properties"]["formula"]
        assert resolved.designs_reference in {f["id"] for f in design_fields}
    finally:
        client.close()


def test_the_sandbox_app_needs_only_the_buttons(sandbox, tmp_path, capsys):
    env_file = _env_file(tmp_path, sandbox, sandbox.quickbase.app_id, sandbox.quickbase.token,
                         QB_TABLE_ID=sandbox.quickbase.table_id,
                         QB_OPPORTUNITIES_TABLE_ID=sandbox.quickbase.opportunities_table_id)
    assert main(["quickbase", "init", "--env-file", env_file]) == 0
    out = capsys.readouterr().out
    assert "skipped: Opportunities: Create in Aurora" in out
    ours = [line for line in out.splitlines() if line.startswith(("Aurora Designs ", "Opportunities "))]
    assert ours == []  # the seeded designs and opportunities tables fit their specs
    assert main(["quickbase", "init", "--env-file", env_file, "--receiver-url", "http://127.0.0.1:9"]) == 0
    out = capsys.readouterr().out
    ours = [line for line in out.splitlines() if line.startswith(("Aurora Designs ", "Opportunities "))]
    assert len(ours) == 2 and all("create field" in line for line in ours)


def test_init_for_a_tenant_uses_its_app_token_variables_and_button_path(sandbox, tmp_path, capsys):
    """Many tenants: ``--tenant globex`` sets up globex's own app with its own token, and its
    buttons point at the receiver's /tenants/globex path; the printed variable is globex's."""
    import yaml

    qb = sandbox.quickbase
    app = qb.add_app("Globex CRM app")
    token = qb.add_token([app.id])
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(yaml.safe_dump({"tenants": [
        {"name": "acme", "aurora_tenant_id": "t-acme", "api_token_env": "KEY_ACME"},
        {"name": "globex", "aurora_tenant_id": "t-globex", "api_token_env": "KEY_GLOBEX", "quickbase_app_id": app.id,
         "quickbase_user_token_env": "QB_USER_TOKEN_GLOBEX",
         "quickbase_opportunities_table_id_env": "QB_OPPORTUNITIES_TABLE_ID_GLOBEX"}]}))
    env_file = _env_file(tmp_path, sandbox, sandbox.quickbase.app_id, str(sandbox.quickbase.token),
                         QB_USER_TOKEN_GLOBEX=token, AURORA_QB_TENANTS_FILE=str(tenants))
    receiver = "https://hooks.example.com"
    args = ["quickbase", "init", "--env-file", env_file, "--receiver-url", receiver, "--tenant", "globex"]
    assert main([*args, "--apply"]) == 0
    out = capsys.readouterr().out
    tables = {qb.tables[t].name: t for t in qb.apps[app.id].table_ids}
    assert {"Aurora Designs", "Opportunities"} <= set(tables)
    assert f"QB_OPPORTUNITIES_TABLE_ID_GLOBEX={tables['Opportunities']}" in out
    client = QuickbaseClient(base_url=sandbox.quickbase_url, realm_hostname=qb.realm, user_token=token,
                             table_id=tables["Aurora Designs"])
    try:
        button = next(f for f in client.table_fields(tables["Opportunities"]) if f["label"] == "Create in Aurora")
        assert f'"{receiver}/tenants/globex/quickbase/opportunities/"' in button["properties"]["formula"]
    finally:
        client.close()
    assert main(["quickbase", "init", "--env-file", env_file, "--tenant", "initech"]) == 2
    assert "not in the tenants file" in capsys.readouterr().err
