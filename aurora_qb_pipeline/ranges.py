"""Partition-range arithmetic (pure): which contiguous ranges of projects a run should cover.

Runs cover *ranges* of the ``aurora_projects`` dynamic partitions; the staging assets have
``BackfillPolicy.single_run()``, so a batch of 1,000 projects is one run, not 1,000.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .api_facts import AURORA_RATE_LIMIT

# A project costs about this many Aurora requests: the project, its design list, and a summary and
# a default proposal per design (2.5 designs a project on average). It follows from what the staging
# assets fetch; not a setting.
REQUESTS_PER_PROJECT = 7.0


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
    (90 requests a minute: 129,600 a day, times the share, over ~7 requests a project)."""
    per_day = AURORA_RATE_LIMIT.requests * (24 * 3600 / AURORA_RATE_LIMIT.window_s)
    return int(per_day * budget_share // requests_per_project)
