"""Partition-range arithmetic (pure): which contiguous ranges of projects a run should cover.

Runs cover *ranges* of the ``aurora_projects`` dynamic partitions; the staging assets have
``BackfillPolicy.single_run()``, so a batch of 1,000 projects is one run, not 1,000.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from .api_facts import AURORA_MAX_PER_PAGE, AURORA_RATE_LIMIT

DESIGNS_PER_PROJECT = 2.5
"""Designs a project has on average (the sizing assumption of the budgets below, and the benchmark's)."""


def requests_per_project(pricing: bool = False, designs_per_project: float = DESIGNS_PER_PROJECT) -> float:
    """Aurora requests a range run spends per project, from what the staging assets fetch: the
    project's design list, a summary and a default proposal per design (and its pricing, when
    fetched), and the project itself from the list pages (one page per 250 projects; a run over
    fewer projects than the listing has pages fetches each project instead, a request more, but
    such runs are small). Not a setting."""
    return 1 + (3 if pricing else 2) * designs_per_project + 1 / AURORA_MAX_PER_PAGE


REQUESTS_PER_PROJECT = requests_per_project()
"""6.004: 7 before project list pages replaced ``GET /projects/{id}`` (issue 10)."""


def plan_ranges(order: Sequence[str], keys: Iterable[str], max_ranges: int) -> list[tuple[str, str]]:
    """Cover ``keys`` with at most ``max_ranges`` contiguous ranges of ``order``.

    Neighbouring ranges separated by the smallest gaps are merged first: refreshing a few
    projects nobody asked for is cheaper than launching another run."""
    position = {k: i for i, k in enumerate(order)}
    wanted = sorted({position[k] for k in keys if k in position})
    if not wanted:
        return []
    spans: list[list[int]] = [[wanted[0], wanted[0]]]
    for p in wanted[1:]:
        if p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    while len(spans) > max(1, max_ranges):
        gap_index = min(range(len(spans) - 1), key=lambda i: spans[i + 1][0] - spans[i][1])
        spans[gap_index][1] = spans[gap_index + 1][1]
        del spans[gap_index + 1]
    return [(order[a], order[b]) for a, b in spans]


def daily_slice(order: Sequence[str], day_number: int, per_day: int) -> tuple[str, str]:
    """The contiguous slice of partitions to refresh on a given day, rotating through all of them."""
    slices = max(1, -(-len(order) // max(1, per_day)))
    index = day_number % slices
    start = index * per_day
    return order[start], order[min(len(order), start + per_day) - 1]


def projects_per_day(budget_share: float, requests_per_project: float = REQUESTS_PER_PROJECT) -> int:
    """How many projects one day's share of Aurora's request budget refreshes
    (90 requests a minute: 129,600 a day, times the share, over ~6 requests a project)."""
    per_day = AURORA_RATE_LIMIT.requests * (24 * 3600 / AURORA_RATE_LIMIT.window_s)
    return int(per_day * budget_share // requests_per_project)


# --- how long a range run may take (its dagster/max_runtime) -------------------------------

RUNTIME_MARGIN = 1.25
"""Slack on the rate-limit floor: retries, backoff, 429s, latency, Dagster's own bookkeeping."""

RUNTIME_FIXED_S = 30 * 60
"""Time that does not grow with the range: process start, loading the code, the export and checks."""


def aurora_floor_s(projects: int, requests_per_project: float = REQUESTS_PER_PROJECT) -> float:
    """The shortest time Aurora's rate limit allows for the requests of ``projects`` projects."""
    return projects * requests_per_project / AURORA_RATE_LIMIT.requests * AURORA_RATE_LIMIT.window_s


def runtime_budget_s(projects: int, budget_share: float = 0.5, time_scale: float = 1.0,
                     requests_each: float = REQUESTS_PER_PROJECT) -> int:
    """``dagster/max_runtime`` of a run over ``projects`` projects, in seconds.

    A run needs its own requests at Aurora's rate limit (``requests_each`` a project, ~6 or ~8.5
    with pricing: :func:`requests_per_project`; 90 a minute), and it may
    queue behind the largest other run: all runs share the rate budget and take turns on the
    ``duckdb`` pool step by step, and the largest scheduled run is the nightly reconcile, which
    spends ``budget_share`` of a day's requests (half: 12 hours at the limit). Both, with 25%
    margin, plus 30 minutes that do not depend on the range: about 15.5 hours for one project,
    30.5 hours for the largest reconcile, 48 hours for a first discovery of 20,000 projects.
    Rate-limit time shrinks with the sandbox's ``time_scale``."""
    waits_behind = aurora_floor_s(projects_per_day(budget_share, requests_each), requests_each)
    scaled = RUNTIME_MARGIN * (aurora_floor_s(projects, requests_each) + waits_behind) * time_scale
    return int(math.ceil(scaled + RUNTIME_FIXED_S))
