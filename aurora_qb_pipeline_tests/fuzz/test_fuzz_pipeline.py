"""Property test end to end: the sandbox answers for a range of projects, up to two of them
corrupted (a value mutated anywhere inside, or the whole answer broken: not JSON, a bare array, a
missing or null envelope key, the wrong container), and one sync run over the range.

Properties: the run succeeds without a step retry; every project is staged or quarantined; every
design of a well-formed list is staged or quarantined, and a broken list is one quarantine row
naming its project; every staged design has its summary staged or quarantined; every reason is
set; and exactly the designs that are staged, clean and exportable reach the Quickbase sandbox.
"""

import itertools
import os

import dagster as dg
from hypothesis import given
from hypothesis import strategies as st

from aurora_qb_pipeline.sandbox.aurora.overrides import corrupt_json

from ..conftest import corruptible_pipeline, exportable, retried_steps, step_failure_text
from . import strategies as aurora
from .test_fuzz_staging import examples

ENDPOINTS = {  # kind -> (path template, envelope key)
    "project": ("/projects/{}", "project"),
    "designs": ("/projects/{}/designs", "designs"),
    "summary": ("/designs/{}/summary", "design"),
    "proposal": ("/designs/{}/proposals/default", "proposal"),
}


@st.composite
def corruption(draw, targets):
    """(path, what to serve there: a (bytes, content type) body or a JSON answer to corrupt)."""
    kind, key_id, original = draw(st.sampled_from(targets))
    template, key = ENDPOINTS[kind]
    answer = {key: original}
    if draw(st.booleans()):
        broken = aurora.broken_answer(key, answer, draw(st.sampled_from(aurora.ANSWER_FAULTS)))
    else:
        broken = {key: draw(aurora.mutated(st.just(original), most=3))}
    return template.format(key_id), broken


def _serve(overrides, faults) -> dict:
    served = {}
    for path, answer in faults:
        if isinstance(answer, bytes):
            overrides.replace(path, answer, "text/html" if answer.startswith(b"<") else "text/plain")
        else:
            overrides.rewrite(path, lambda _, answer=answer: answer)
        served[path] = answer
    return served


def _well_formed(answer, key: str, kind: type) -> bool:
    return isinstance(answer, dict) and isinstance(answer.get(key), kind)


def _check(pipeline, result, served: dict, aurora_tenant) -> None:
    checks_passed = all(c.passed for c in result.get_asset_check_evaluations()
                        if c.check_name != "export_without_failures")
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert not retried_steps(result)
    if checks_passed:
        assert result.success and not failures, step_failure_text(result) if failures else ""
    query = pipeline.query
    reasons = [r[0] for r in query("select reason from ops.quarantine")]
    assert all(reason and reason.strip() for reason in reasons)

    staged_projects = {r[0] for r in query("select project_id from staging.project_addresses")}
    held_projects = {r[0] for r in query("select project_id from ops.quarantine where asset = 'project_addresses'")}
    assert staged_projects | held_projects == set(aurora_tenant.projects) and not staged_projects & held_projects

    for project_id, design_ids in aurora_tenant.project_design_ids.items():
        staged = query("select count(*) from staging.designs where project_id = ?", [project_id])[0][0]
        held = query("select count(*) from ops.quarantine where asset = 'designs' and project_id = ?",
                     [project_id])[0][0]
        answer = served.get(f"/projects/{project_id}/designs", {"designs": design_ids})
        if _well_formed(answer, "designs", list):
            assert staged + held == len(answer["designs"]), (project_id, answer)
        else:
            assert (staged, held) == (0, 1), (project_id, answer)

    summarised = query("""select count(*) from staging.designs d where (
                              select count(*) from staging.design_summaries s where s.design_id = d.design_id) +
                              (select count(*) from ops.quarantine q where q.asset = 'design_summaries'
                               and q.record_key = d.design_id) != 1""")[0][0]
    assert summarised == 0, "a staged design has neither a staged nor a quarantined summary (or both)"
    in_qb = [r[20] for r in pipeline.qb_records()]
    assert len(in_qb) == len(set(in_qb))
    if checks_passed:
        assert set(in_qb) == exportable(pipeline)


def test_corrupted_answers_never_stop_the_batch_and_the_rest_reaches_quickbase(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz_pipeline")
    # an in-memory instance: the run's event log is most of a run's time here
    with dg.DagsterInstance.ephemeral() as instance, \
            corruptible_pipeline(base, instance, projects=8, seed=21) as pipeline:
        tenant = pipeline.sandbox.aurora.primary
        pipeline.add_projects()
        targets = [
            *[("project", p, tenant.projects[p]) for p in tenant.projects],
            *[("designs", p, tenant.designs_of(p)) for p in tenant.projects],
            *[("summary", d, tenant.summaries[d]) for d in tenant.designs],
            *[("proposal", d, tenant.proposals[d]) for d in tenant.proposals],
        ]
        runs = itertools.count()

        @examples(1 / 20)
        @given(faults=st.lists(corruption(targets), max_size=2, unique_by=lambda f: f[0]))
        def one_run(faults):
            pipeline.overrides.clear()
            pipeline.sandbox.quickbase.clear_records()
            for suffix in ("", ".wal"):  # a fresh DuckDB file: nothing staged, exported or quarantined
                if os.path.exists(pipeline.duckdb_path + suffix):
                    os.remove(pipeline.duckdb_path + suffix)
            served = _serve(pipeline.overrides, faults)
            assert all(isinstance(a, bytes) or corrupt_json(a) for a in served.values())
            result = pipeline.run(raise_on_error=False)
            next(runs)
            _check(pipeline, result, served, tenant)

        one_run()
        assert next(runs) >= 3
