"""Step 4 of ``aurora-qb demo``: the CRM-to-Aurora loop (issue 14). Opportunities entered in the
Quickbase sandbox become Aurora projects and design requests; the design service completes them
(Aurora's magic sandbox address: at once), a designer accepts them, and the designs land in
Quickbase linked to their opportunities. One opportunity has an address Aurora cannot use."""

from __future__ import annotations

from ..sandbox.launcher import Sandbox
from ..settings import Credentials, Settings

OPPORTUNITIES = [
    {"Customer First Name": "Ada", "Customer Last Name": "Lovelace", "Customer Email": "ada@example.com"},
    {"Customer First Name": "Grace", "Customer Last Name": "Hopper", "Customer Email": "grace@example.com"},
]
MAGIC = {"Street": "901 Mears Ct", "City": "Stanford", "State": "CA", "Postal Code": "94305", "Country": "USA"}
BAD = {"Customer First Name": "Alan", "Customer Last Name": "Turing", "Street": "Nowhere Lane",
       "City": "Atlantis", "State": "ZZ", "Postal Code": "0"}


def run_opportunities(sandbox: Sandbox, settings: Settings, instance) -> bool:
    from ..definitions import build_definitions
    from ..defs.resources import build_resources
    from ..runner import tick

    print("\n4) Quickbase opportunities -> Aurora projects -> designs -> Quickbase, linked to their opportunities:")
    settings = settings.model_copy(update={"opportunities_sync": True})
    defs = build_definitions(settings, build_resources(settings, Credentials.from_env(sandbox.env())))
    qb, table = sandbox.quickbase, sandbox.quickbase.opportunities_table_id
    fid = {f.label: f.id for f in qb.table(table).fields.values()}
    rows = [{**o, **MAGIC, "Ready for Aurora": True} for o in OPPORTUNITIES] + [{**BAD, "Ready for Aurora": True}]
    ids = qb.add_records(table, [{fid[k]: v for k, v in row.items()} for row in rows]).record_ids["created"]
    print(f"   {len(ids)} opportunities flagged 'Ready for Aurora' in Quickbase (one with an unusable address)")
    outcome = tick(defs, instance, "quickbase_opportunities_sensor")
    ok = all(r.success for r in outcome.runs)
    records = {r[3]: r for r in qb.records(table)}
    for rid in ids:
        r = records[rid]
        shown = r.get(fid["Aurora Project ID"]) or r.get(fid["Aurora Sync Error"])
        print(f"   opportunity {rid}: {r.get(fid['Aurora Sync Status'])}: {shown}")
    requests = [records[rid].get(fid["Aurora Design Request ID"]) for rid in ids]
    for request_id in filter(None, requests):  # completed at once (magic address); a designer accepts
        sandbox.aurora.accept_design_request(None, request_id)
    synced = tick(defs, instance, "aurora_webhook_sensor")  # the tracked design requests are polled
    ok = ok and all(r.success for r in synced.runs)
    designs = sandbox.quickbase.table_id
    ref, key = (qb.field_by_label(designs, label).id for label in ("Opportunity", "Aurora Design ID"))
    linked = {r[key]: r.get(ref) for r in qb.records(designs) if r.get(ref)}
    print(f"   aurora_webhook_sensor: {len(synced.runs)} run(s), success={ok}; {len(linked)} design(s) in Quickbase "
          f"linked to their opportunity: {sorted(set(linked.values()))}")
    return ok and len(linked) == len([r for r in requests if r])
