"""From inbox rows and followed design requests to the projects that need a sync (plain Python).

Each event is resolved to its Aurora project as cheaply as possible:

* ``project_created``, ``project_status_changed``, ``agreement_status_changed`` carry the project id;
* ``design_request_completed`` / ``_rejected``: the followed request's project when known, else
  ``GET /design_requests/{id}`` (project, current status and, once accepted, the design);
* ``performance_simulation_job_completed``: the design's project from the ``design_projects``
  table, else ``GET /designs/{id}`` (learned once: a design never moves).

The trigger rules decide before anything is fetched, so an event whose status no rule names costs
no request. Every fetch waits for the shared rate budget only until the tick's deadline; when the
budget or the deadline runs out, the rows not handled stay unread for the next tick.

:func:`poll_design_requests` retrieves followed design requests one by one until they are final
(``accepted`` or ``designer_rejected``), backing off between checks: the documented way to learn
what no webhook says (an acceptance in the app, say).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from ..api_facts import AURORA_DESIGN_REQUEST_FINAL_STATUSES
from ..clients import (
    AuroraClient,
    AuthenticationError,
    NotFoundError,
    PermanentApiError,
    RateBudgetExhausted,
    TransientApiError,
)
from .events import PROJECT_PARAMETER
from .inbox import Inbox, InboxRow
from .triggers import TriggerRules

log = logging.getLogger(__name__)

DESIGN_REQUEST_EVENTS = frozenset({"design_request_completed", "design_request_rejected"})
_PROGRESS = {"submitted": 0, "designer_completed": 1, "accepted": 2, "designer_rejected": 2}


def later_status(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The further along of two design-request statuses (deliveries may come out of order)."""
    return max((s for s in (a, b) if s), key=lambda s: _PROGRESS.get(s, -1), default=None)
SIMULATION_EVENT = "performance_simulation_job_completed"
SOURCE_WEBHOOK = "webhook"


@dataclass(frozen=True)
class PollingTuning:
    """How followed design requests are polled (Aurora seconds; scaled by ``time_scale``)."""

    first_check_after_s: float = 300.0
    max_interval_s: float = 6 * 3600.0
    give_up_after_s: float = 14 * 24 * 3600.0
    max_checks_per_tick: int = 20

    def next_check(self, now: float, checks: int, time_scale: float) -> float:
        interval = min(self.first_check_after_s * 2 ** min(checks, 20), self.max_interval_s)
        return now + interval * time_scale


@dataclass
class Resolution:
    """What a batch of rows asks for: projects to sync (project -> newest event, epoch seconds)."""

    to_sync: dict[str, float] = field(default_factory=dict)
    last_id: int = 0  # every row up to here is handled
    counts: Counter = field(default_factory=Counter)
    stopped_early: Optional[str] = None

    def want(self, project_id: str, when: float) -> None:
        self.to_sync[project_id] = max(self.to_sync.get(project_id, 0.0), when)


class _Stop(Exception):
    """The tick's budget is spent: leave the remaining rows for the next tick."""


class EventResolver:
    """Resolves inbox rows to projects for one sensor tick."""

    def __init__(self, aurora: AuroraClient, inbox: Inbox, rules: TriggerRules, deadline: float,
                 polling: PollingTuning = PollingTuning(), time_scale: float = 1.0,
                 clock: Callable[[], float] = time.time, tenant_id: Optional[str] = None):
        """``tenant_id``: a tenant's location (many tenants): the design requests it starts to
        follow are recorded as that tenant's, so only its sensor polls them."""
        self.aurora, self.inbox, self.rules, self.deadline = aurora, inbox, rules, deadline
        self.polling, self.time_scale, self.clock, self.tenant_id = polling, time_scale, clock, tenant_id

    def _wait(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Stop("tick budget spent")
        return remaining

    def _fetch(self, what: Callable[[float], dict]) -> Optional[dict]:
        """One Aurora read within the tick's budget; None when the object is gone (404) or Aurora
        refuses the lookup for good (a 4xx other than 401/403): such an event cannot be resolved,
        and retrying it every tick would only block the ones behind it."""
        try:
            return what(self._wait())
        except NotFoundError:
            return None
        except RateBudgetExhausted:
            raise _Stop("rate budget in use by runs") from None
        except AuthenticationError:
            raise  # every other lookup would be refused too: the tick fails, naming the credential
        except PermanentApiError as exc:
            log.warning("event not resolvable: %s", self.aurora.redact(str(exc)))
            return None
        except TransientApiError as exc:
            raise _Stop(f"Aurora unavailable ({exc})") from None

    def handle(self, rows: Iterable[InboxRow], after_id: int) -> Resolution:
        """Handle ``rows`` (ascending ids, all after ``after_id``) in order until done or stopped."""
        result = Resolution(last_id=after_id)
        rows = list(rows)
        self._gone: set[str] = set()
        seen_keys: set[str] = set()
        tracked = self.inbox.tracked_design_requests(
            r.params.get("design_request_id", "") for r in rows if r.event in DESIGN_REQUEST_EVENTS)
        designs = self.inbox.design_projects(r.params.get("design_id", "") for r in rows if r.event == SIMULATION_EVENT)
        try:  # design requests first: each teaches its project, and its design's once accepted
            self._learn_requests(rows, result, tracked, designs)
        except _Stop as stop:
            result.stopped_early = str(stop)
            return result
        for row in rows:
            try:
                self._handle_row(row, result, seen_keys, tracked, designs)
            except _Stop as stop:
                result.stopped_early = str(stop)
                break
            result.last_id = row.id
        return result

    def _handle_row(self, row: InboxRow, result: Resolution, seen_keys: set[str], tracked: dict,
                    designs: dict[str, str]) -> None:
        counts = result.counts
        if row.dedupe_key in seen_keys:
            counts["duplicates"] += 1
            return
        seen_keys.add(row.dedupe_key)
        counts["deliveries"] += row.deliveries
        status = row.params.get("status")
        if not row.known or (self.rules.rule(row.event) is None and row.event not in DESIGN_REQUEST_EVENTS):
            counts["ignored_event"] += 1
            return
        if row.event in DESIGN_REQUEST_EVENTS:
            self._design_request_event(row, result, tracked, designs)
            return
        if not self.rules.syncs(row.event, status):
            counts["ignored_status"] += 1
            return
        if row.event == SIMULATION_EVENT:
            design_id = row.params["design_id"]
            project = designs.get(design_id)
            if project is None:
                design = self._fetch(lambda wait: self.aurora.get_design(design_id, throttle_timeout=wait))
                counts["aurora_requests"] += 1
                if design is None:
                    counts["unresolvable"] += 1
                    return
                project = designs[design_id] = design["project_id"]
                self.inbox.remember_designs({design_id: project})
        else:
            project = row.params[PROJECT_PARAMETER]
        result.want(project, row.received_at)
        counts["to_sync"] += 1

    def _wanted_request(self, row: InboxRow) -> bool:
        """Whether a design-request event is worth resolving: requests are followed only when the
        completed-request rule is on, and a final status no rule syncs needs no lookup."""
        rule = self.rules.rule("design_request_completed")
        status = row.params.get("status")
        final = status in AURORA_DESIGN_REQUEST_FINAL_STATUSES
        return rule is not None and rule.enabled and not (final and not self.rules.syncs(row.event, status))

    def _learn_requests(self, rows: list[InboxRow], result: Resolution, tracked: dict, designs: dict) -> None:
        unknown = dict.fromkeys(r.params["design_request_id"] for r in rows
                                if r.known and r.event in DESIGN_REQUEST_EVENTS and self._wanted_request(r)
                                and getattr(tracked.get(r.params["design_request_id"]), "project_id", None) is None)
        learned = []
        try:
            for request_id in unknown:
                request = self._fetch(lambda wait: self.aurora.get_design_request(request_id, throttle_timeout=wait))
                result.counts["aurora_requests"] += 1
                if request is None:
                    self._gone.add(request_id)
                    continue
                status = request.get("status")
                now = self.clock()
                self.inbox.track_design_request(
                    request_id, source=SOURCE_WEBHOOK, project_id=request["project_id"],
                    design_id=request.get("design_id"), status=status,
                    final=status in AURORA_DESIGN_REQUEST_FINAL_STATUSES,
                    next_check_at=self.polling.next_check(now, 0, self.time_scale), now=now,
                    tenant_id=self.tenant_id)
                learned.append(request_id)
                if request.get("design_id"):
                    designs[request["design_id"]] = request["project_id"]
                    self.inbox.remember_designs({request["design_id"]: request["project_id"]})
        finally:
            tracked.update(self.inbox.tracked_design_requests(learned))

    def _design_request_event(self, row: InboxRow, result: Resolution, tracked: dict,
                              designs: dict[str, str]) -> None:
        counts = result.counts
        request_id = row.params["design_request_id"]
        known = tracked.get(request_id)
        status = row.params.get("status")
        final = status in AURORA_DESIGN_REQUEST_FINAL_STATUSES
        if not self._wanted_request(row):
            if known is not None and final:  # e.g. rejected: stop following it
                self.inbox.track_design_request(request_id, source=known.source, status=status, final=True,
                                                next_check_at=known.next_check_at, tenant_id=self.tenant_id)
            counts["ignored_status"] += 1
            return
        project, design_id = (known.project_id, known.design_id) if known else (None, None)
        if request_id in self._gone:
            counts["unresolvable"] += 1
            return
        if project is not None:
            status = later_status(known.status, status)
            final = status in AURORA_DESIGN_REQUEST_FINAL_STATUSES
        else:
            request = self._fetch(lambda wait: self.aurora.get_design_request(request_id, throttle_timeout=wait))
            counts["aurora_requests"] += 1
            if request is None:
                counts["unresolvable"] += 1
                return
            project, design_id, status = request["project_id"], request.get("design_id"), request.get("status")
            final = status in AURORA_DESIGN_REQUEST_FINAL_STATUSES
        now = self.clock()
        self.inbox.track_design_request(
            request_id, source=known.source if known else SOURCE_WEBHOOK, project_id=project, design_id=design_id,
            status=status, final=final, next_check_at=self.polling.next_check(now, 0, self.time_scale), now=now,
            tenant_id=self.tenant_id)
        if design_id:
            designs[design_id] = project
            self.inbox.remember_designs({design_id: project})
        if self.rules.syncs(row.event, status):
            result.want(project, row.received_at)
            counts["to_sync"] += 1
        else:
            counts["ignored_status"] += 1


@dataclass
class PollResult:
    to_sync: dict[str, float] = field(default_factory=dict)
    checked: int = 0
    changed: int = 0
    finished: int = 0
    stopped_early: Optional[str] = None


def poll_design_requests(aurora: AuroraClient, inbox: Inbox, rules: TriggerRules, deadline: float,
                         polling: PollingTuning = PollingTuning(), time_scale: float = 1.0,
                         clock: Callable[[], float] = time.time, tenant_id: Optional[str] = None) -> PollResult:
    """Retrieve the followed design requests whose check is due, one by one, within the budget.
    A request whose status moved to one the rules sync asks for its project's sync. ``tenant_id``
    (many tenants): only that tenant's requests, the ones ``aurora``'s key can read."""
    result = PollResult()
    now = clock()
    for request in inbox.due_design_requests(now, polling.max_checks_per_tick, tenant_id):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            result.stopped_early = "tick budget spent"
            break
        expired = now - request.first_seen_at > polling.give_up_after_s * time_scale
        try:
            current = aurora.get_design_request(request.id, throttle_timeout=remaining)
        except NotFoundError:
            inbox.record_check(request.id, status=None, project_id=None, design_id=None, final=True,
                               next_check_at=now, error="not found in Aurora", now=now)
            result.checked += 1
            continue
        except AuthenticationError:
            raise
        except PermanentApiError as exc:  # refused for good: stop following it, keep the reason
            inbox.record_check(request.id, status=None, project_id=None, design_id=None, final=True,
                               next_check_at=now, error=aurora.redact(str(exc)), now=now)
            result.checked += 1
            continue
        except RateBudgetExhausted:
            result.stopped_early = "rate budget in use by runs"
            break
        except TransientApiError as exc:
            inbox.record_check(request.id, status=None, project_id=None, design_id=None, final=expired,
                               next_check_at=polling.next_check(now, request.checks, time_scale),
                               error=aurora.redact(str(exc)), now=now)
            result.checked += 1
            continue
        status, project, design_id = current.get("status"), current.get("project_id"), current.get("design_id")
        final = status in AURORA_DESIGN_REQUEST_FINAL_STATUSES or expired
        inbox.record_check(request.id, status=status, project_id=project, design_id=design_id, final=final,
                           next_check_at=polling.next_check(now, request.checks + 1, time_scale), now=now)
        if design_id and project:
            inbox.remember_designs({design_id: project})
        result.checked += 1
        result.finished += int(final)
        if status != request.status:
            result.changed += 1
            if project and rules.syncs("design_request_completed", status):
                result.to_sync[project] = max(result.to_sync.get(project, 0.0), now)
    return result
