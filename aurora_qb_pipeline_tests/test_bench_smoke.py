"""The benchmark runs end to end at a tiny size and reports sane figures. Nothing here is timed:
speed is what the benchmark reports (README, "Benchmark"), not what a test asserts."""

import json

import pytest

from aurora_qb_pipeline import bench

SIZE = ["--projects", "6", "--designs", "15", "--time-scale", "0.01", "--latency-ms", "0", "--seed", "3"]
FIELDS = {
    "wall_s", "real_world_s", "cpu_s", "aurora_requests", "aurora_429", "quickbase_requests", "quickbase_429",
    "upsert_requests", "records_sent", "records_per_upsert", "aurora_lower_bound_s", "ratio_to_lower_bound",
    "peak_rss_mb", "ok",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert bench.main([*SIZE, "--mode", "both", "--quiet", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def _steps(report, mode):
    return {s["key"]: s for s in report["modes"][mode]["steps"]}


def test_every_step_reports_every_figure(report):
    assert report["config"]["projects"] == 6 and report["machine"]["nproc"] >= 1
    for mode in bench.MODES:
        result = report["modes"][mode]
        assert result["data"]["designs"] == 15
        assert result["max_rss_mb"] > 0
        for step in result["steps"]:
            assert FIELDS <= set(step), step["key"]
            assert step["ok"] and step["wall_s"] > 0 and step["peak_rss_mb"] > 0
            assert step["real_world_s"] == pytest.approx(step["wall_s"] / 0.01, abs=0.1)


def test_incremental_sends_only_what_changed(report):
    steps = _steps(report, "incremental")
    assert list(steps) == [
        "full_sync", "first_scan", "rerun_unchanged", "rerun_unchanged_discovery",
        "rerun_unchanged_design_requests", "rerun_1pct", "rerun_1pct_webhooks", "full_reconcile",
    ]
    full = steps["full_sync"]
    # one batch for every design, one for every line item (one request per 40 MB per table)
    assert full["upsert_requests"] == 2 and full["records_sent"] > 0
    assert full["detail"]["export_upserts"] == 1 and full["detail"]["line_item_requests"] == 1
    unchanged = steps["rerun_unchanged"]
    assert unchanged["records_sent"] == 0 and unchanged["upsert_requests"] == 0
    assert unchanged["aurora_requests"] < full["aurora_requests"]
    assert steps["rerun_1pct"]["detail"]["changed_designs"] >= 1
    assert steps["rerun_1pct"]["aurora_requests"] < full["aurora_requests"]
    webhooks = steps["rerun_1pct_webhooks"]
    assert webhooks["detail"]["changed_designs"] >= 1 and webhooks["detail"]["webhook_deliveries"] >= 1
    # issue 9's goals: one run and one upsert a tick, Aurora asked for what the changes need
    # (the bench syncs line items too: one upsert for the designs table, one for the line items table)
    assert webhooks["detail"]["runs"] == 1 and webhooks["records_sent"] >= 1
    assert webhooks["detail"]["export_upserts"] == 1 and webhooks["upsert_requests"] == 2
    assert steps["rerun_1pct"]["detail"]["runs"] == 1 and steps["rerun_1pct"]["detail"]["export_upserts"] == 1
    assert steps["rerun_1pct"]["upsert_requests"] == 2
    assert webhooks["aurora_requests"] - webhooks["aurora_429"] <= 1.05 * webhooks["detail"]["aurora_needed"]
    assert steps["rerun_1pct"]["detail"]["latency_max_s"] > 0
    assert webhooks["detail"]["latency_max_s"] > 0 and webhooks["aurora_requests"] < full["aurora_requests"]
    reconcile = steps["full_reconcile"]
    assert reconcile["records_sent"] == 0 and reconcile["upsert_requests"] == 0
    assert reconcile["aurora_requests"] >= 2 * report["config"]["projects"]  # every project fetched again
    drift = reconcile["detail"]["drift"]  # it compared every record with what Quickbase holds: no drift
    assert drift["missing"] == drift["edited"] == 0 and drift["unchanged"] > 0 and drift["requests"] >= 1


def test_naive_fetches_and_posts_everything_every_run(report):
    data = report["modes"]["naive"]["data"]
    steps = _steps(report, "naive")
    assert list(steps) == ["full_sync", "rerun_unchanged", "rerun_1pct"]
    # a page of projects; each project's designs; the project, when it has designs; summary + proposal per design
    per_run = 1 + data["projects"] + data["projects_with_designs"] + 2 * data["designs"]
    for step in steps.values():
        assert step["upsert_requests"] == step["detail"]["projects_posted"] == data["projects_with_designs"]
        assert step["records_sent"] == data["designs"]
        assert step["aurora_requests"] - step["aurora_429"] == per_run


def test_records_per_upsert_counts_the_designs_table_only(report):
    """The table's dsg/ups column: design records per upsert to the designs table (the pipeline
    also upserts line items to their own table; the naive script has one table)."""
    from aurora_qb_pipeline.bench.report import design_records_per_upsert, format_table

    full = _steps(report, "incremental")["full_sync"]
    assert full["upsert_requests"] == 2 and full["detail"]["export_upserts"] == 1
    assert design_records_per_upsert(full) == str(full["records_sent"])
    naive = _steps(report, "naive")["full_sync"]
    assert float(design_records_per_upsert(naive)) == pytest.approx(naive["records_sent"] / naive["upsert_requests"], abs=0.05)
    assert "dsg/ups" in format_table(report) and "rec/ups" not in format_table(report)
