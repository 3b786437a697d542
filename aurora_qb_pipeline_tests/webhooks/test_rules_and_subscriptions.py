"""Trigger rules (every problem at once) and subscriptions as code (idempotent, against the
sandbox's webhooks API, through the `aurora-qb webhooks` commands)."""

import pytest

from aurora_qb_pipeline.cli import main
from aurora_qb_pipeline.cli.sandbox import write_env_file
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.settings import Settings
from aurora_qb_pipeline.webhooks.subscriptions import MARKER, fingerprint, is_ours
from aurora_qb_pipeline.webhooks.triggers import TriggersError, load_trigger_rules, parse_trigger_rules

from .conftest import SECRET, subscribe


def test_every_problem_of_a_trigger_file_is_reported_at_once(tmp_path):
    bad = tmp_path / "triggers.yaml"
    bad.write_text(
        "triggers:\n"
        "  agreement_signed: {statuses: [signed]}\n"           # no such event
        "  agreement_status_changed: {statuses: [signd]}\n"    # a typo in a documented status
        "  design_request_completion: {statuses: [designer_rejected]}\n"  # rejected requests never sync
        "  project_status_changed: {statuses: []}\n"           # nothing would ever match
        "  project_status_updated: {statuses: any}\n"          # the same event twice (legacy name)
        "  project_created: {statuses: any, when: always}\n"   # unknown key
    )
    with pytest.raises(TriggersError) as caught:
        load_trigger_rules(bad)
    problems = caught.value.problems
    assert len(problems) == 6, problems
    for expected in ("agreement_signed: unknown event", "unknown status(es) signd", "never sync",
                     "list at least one status", "has a rule already", "project_created.when"):
        assert any(expected in p for p in problems), expected
    with pytest.raises(TriggersError):  # and the code location refuses to load with it
        build_definitions(Settings(AURORA_QB_WEBHOOK_TRIGGERS=str(bad)))


def test_the_shipped_rules_follow_the_crm_vendors_defaults():
    rules = load_trigger_rules()
    assert rules.syncs("agreement_status_changed", "signed")
    assert not rules.syncs("agreement_status_changed", "viewed")
    assert rules.syncs("project_status_updated", "Design Ready")  # legacy name
    assert not rules.syncs("design_request_completed", "designer_rejected")
    assert not rules.syncs("design_request_rejected", "designer_rejected")
    assert rules.syncs("project_created", None)
    assert not rules.syncs("lead_created", None)  # no rule: stored, never synced
    custom = parse_trigger_rules({"triggers": {"agreement_status_changed": {"statuses": ["cancel_pending"]}}})
    assert custom.syncs("agreement_status_changed", "cancel-pending")  # the webhook's spelling


def test_subscribe_is_idempotent_and_leaves_other_subscriptions_alone(pipeline):
    hub, tenant = pipeline.sandbox.aurora.webhooks, pipeline.sandbox.aurora.primary.tenant_id
    foreign = hub.subscribe(tenant, "project_created", "https://crm.example.com/hook?p=<PROJECT_ID>")
    url = "https://hooks.example.com/"
    first = subscribe(pipeline, url)
    assert {c.action for c in first} == {"create"} and len(first) == 6
    assert {c.action for c in subscribe(pipeline, url)} == {"keep"}

    ours = [s for s in hub.list(tenant) if is_ours(s)]
    assert len(ours) == 6 and all(s["headers"] == {"X-Aurora-Webhook-Token": "********"} for s in ours)
    assert all(fingerprint(SECRET) in s["description"] and SECRET not in str(s) for s in ours)
    copy = ours[0]
    hub.create(tenant, {k: copy[k] for k in ("event", "url_template", "description")})  # made twice by hand

    rotated = subscribe(pipeline, url, secret="a-brand-new-secret-7c1d0e55")
    actions = sorted((c.action, c.reason) for c in rotated)
    assert actions.count(("delete", "duplicate")) == 1
    assert sum(a == "update" for a, _ in actions) == 6  # the new secret's fingerprint differs
    assert [c.action for c in subscribe(pipeline, url, secret="a-brand-new-secret-7c1d0e55")] == ["keep"] * 6

    fewer = subscribe(pipeline, url, secret="a-brand-new-secret-7c1d0e55", events=["project_created"])
    assert sorted(c.action for c in fewer) == ["delete"] * 5 + ["keep"]
    remaining = hub.list(tenant)
    assert [s["id"] for s in remaining if not is_ours(s)] == [foreign["id"]]
    assert len([s for s in remaining if is_ours(s)]) == 1


def test_webhooks_commands_against_the_sandbox(pipeline, tmp_path, capsys):
    env_file = tmp_path / ".env"
    write_env_file(env_file, {**pipeline.sandbox.env(), "AURORA_QB_WEBHOOK_SECRET": SECRET})
    base = ["--env-file", str(env_file)]
    assert main(["webhooks", "subscribe", "--public-url", "https://hooks.example.com", "--secret-in", "query",
                 "--dry-run", *base]) == 0
    assert pipeline.sandbox.aurora.webhooks.list(pipeline.sandbox.aurora.primary.tenant_id) == []
    assert main(["webhooks", "subscribe", "--public-url", "https://hooks.example.com", "--secret-in", "query",
                 *base]) == 0
    assert main(["webhooks", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "create (dry run)" in out and "token=********" in out and SECRET not in out
    assert out.count("performance_simulation_job_completed") >= 3
    assert main(["webhooks", "remove", *base]) == 0
    assert "removed" in capsys.readouterr().out
    assert not [s for s in pipeline.sandbox.aurora.webhooks.list(pipeline.sandbox.aurora.primary.tenant_id)
                if s["description"].startswith(MARKER)]
    assert main(["webhooks", "subscribe", *base]) == 2  # no public URL anywhere
    assert "--public-url" in capsys.readouterr().err
