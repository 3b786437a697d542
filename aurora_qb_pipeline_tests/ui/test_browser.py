"""The Dagster UI in headless Chromium: the asset graph renders against the sandbox.

Uses Debian's chromium (`aurora-qb install-browser`, which CI runs before pytest), never a
browser Playwright would download: this machine has no outside network.
"""

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from aurora_qb_pipeline.defs.aurora.staging import STAGING_GROUP
from aurora_qb_pipeline.defs.quickbase.assets import EXPORT_KEY

CHROMIUM = Path("/usr/bin/chromium")
# No background traffic (updates, sync, QUIC probes) that would hang or slow down offline.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
RENDER_TIMEOUT_MS = 45_000
# the graph shows each node by the last part of its key
STAGING_NODES = ["project_addresses", "designs", "latest_proposals", "design_summaries", "design_arrays"]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `aurora-qb install-browser` (CI runs it before pytest)", pytrace=False)
    profile = tmp_path_factory.mktemp("chromium_profile")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 1200},
            )
        except PlaywrightError as exc:
            pytest.fail(f"could not start {CHROMIUM} ({exc.message.splitlines()[0]}); reinstall it with "
                        "`aurora-qb install-browser`", pytrace=False)
        try:
            yield context.new_page()
        finally:
            context.close()


def test_asset_graph_renders_the_pipeline(dagster_dev, browser_page, tmp_path):
    dagster_dev.graphql("mutation { setNuxSeen }")  # no "join the community" dialog over the graph
    page = browser_page
    repository = f"{dagster_dev.repository_name}@{dagster_dev.location_name}"
    page.goto(f"{dagster_dev.url}/locations/{repository}/asset-groups/{STAGING_GROUP}", wait_until="domcontentloaded")

    screenshot = tmp_path / "asset_graph.png"
    try:
        # the staging group's graph, with the export downstream of it as a link to its group
        for name in ("design_summaries", EXPORT_KEY.path[-1]):
            expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        for name in STAGING_NODES:
            expect(page.get_by_text(name, exact=True).first).to_be_attached()
        # the nodes' live data (latest event, checks, partitions) arrives by further queries
        expect(page.get_by_text("Loading...", exact=True)).to_have_count(0, timeout=RENDER_TIMEOUT_MS)
    finally:
        page.screenshot(path=str(screenshot))
        print(f"asset graph screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
