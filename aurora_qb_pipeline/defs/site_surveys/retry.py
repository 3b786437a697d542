"""Site surveys whose run failed transiently are taken up again by the sensor that launched them.

Both site-survey sensors move their cursor past what they hand to a run (an inbox position, a
Date Modified), so a survey whose run then failed on an outage would otherwise wait for someone
to re-execute the run from the UI. Instead each sensor follows its own runs by their status, as
Dagster keeps it, and keeps what needs another attempt in its cursor:

* every run a sensor launches carries the tag :data:`BATCH_TAG`; the cursor remembers each batch
  (its surveys, their attempt count) until its run has ended;
* the op fails such a run with ``dg.Failure(metadata={"retry_keys": [...]})`` naming the surveys
  that failed on a transient error (an outage that outlived the client's retries); the surveys
  that succeeded, or failed on something retrying cannot fix (a refusal, bad data), are not named;
* at each tick the sensor reads the verdict of its batches (:func:`follow_up`): a run that
  succeeded (or a re-execution of it that did) closes the batch; one still queued or running, or
  failed and about to be retried by the daemon's ``run_retries`` (``dagster/will_retry``), is
  waited for; a failed or canceled run puts its ``retry_keys`` into the cursor's retry set, each
  due after an exponential backoff (the sensor interval, doubling, at most an hour). A run that
  failed without naming them (its process died, a step outside the per-survey loop) retries all
  of its surveys: both operations are idempotent (an intake upserts on the request id, an upload
  skips a survey no longer "Completed" and only writes back one Aurora already completed);
* due surveys join the next run the sensor launches, with new ones or alone. After
  :data:`MAX_ATTEMPTS` failed runs a survey is given up with a warning in the sensor's log (the
  failed runs remain in the UI to re-execute by hand).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg

BATCH_TAG = "aurora_qb/survey_batch"
RETRY_KEYS = "retry_keys"  # metadata of the op's Failure: the surveys worth another attempt
MAX_ATTEMPTS = 5
MAX_BACKOFF_S = 3600.0
NO_RUN_AFTER_S = 3600.0
"""A batch whose run never appeared this long after the tick (the request was dropped) is retried."""

_ENDED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass
class RetryBook:
    """The part of a site-survey sensor's cursor that follows its runs (JSON-friendly).

    ``batches``: {batch id: {"at": launch time, "items": {key: [attempts before, ref]}}};
    ``retry``: {key: [attempts so far, due time, ref]}. ``ref`` is what the run needs besides the
    key (the intake: the webhook's inbox row, for its session token)."""

    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    retry: dict[str, list] = field(default_factory=dict)

    def due(self, now: float) -> dict[str, tuple[int, Any]]:
        """The surveys whose retry is due ({key: (attempts so far, ref)}), taken out of the set."""
        keys = [key for key, (_, at, _) in self.retry.items() if at <= now]
        return {key: (self.retry[key][0], self.retry.pop(key)[2]) for key in keys}

    def waiting(self) -> int:
        return len(self.retry) + sum(len(b["items"]) for b in self.batches.values())

    def launch(self, items: dict[str, tuple[int, Any]], marker: Any, now: float) -> str:
        """Record a batch about to be launched: ``items`` {key: (attempts before, ref)}; returns its id
        (deterministic: a tick evaluated twice asks for the same run key)."""
        digest = hashlib.sha256(json.dumps([sorted((k, a) for k, (a, _) in items.items()), marker],
                                           default=str).encode()).hexdigest()[:16]
        self.batches[digest] = {"at": now, "items": {k: [a, ref] for k, (a, ref) in items.items()}}
        return digest


def _retry_keys(instance: dg.DagsterInstance, run_id: str) -> Optional[list[str]]:
    """The surveys a failed run named for another attempt, or None if it named none."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE, ascending=False).records
    for record in records:
        failure = record.event_log_entry.dagster_event.step_failure_data
        metadata = failure.user_failure_data.metadata if failure and failure.user_failure_data else {}
        if RETRY_KEYS in metadata:
            return [str(key) for key in metadata[RETRY_KEYS].value]
    return None


def verdict(instance: dg.DagsterInstance, batch_id: str, launched_at: float, now: float) -> Optional[list[str]] | str:
    """"ok", "pending", or the keys to retry (a list) of one batch, from its runs' status."""
    runs = instance.get_runs(dg.RunsFilter(tags={BATCH_TAG: batch_id}))  # newest first, re-executions too
    if not runs:
        return "pending" if now - launched_at < NO_RUN_AFTER_S else None
    if any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs):
        return "ok"
    newest = runs[0]
    if newest.status not in _ENDED or newest.is_complete_and_waiting_to_retry:
        return "pending"
    return _retry_keys(instance, newest.run_id)


def backoff_s(attempts: int, base_s: float, cap_s: float) -> float:
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s)


def follow_up(book: RetryBook, instance: dg.DagsterInstance, now: float, base_s: float, cap_s: float,
              log) -> None:
    """Close the batches whose runs ended; put the surveys of failed ones in the retry set."""
    for batch_id, batch in list(book.batches.items()):
        found = verdict(instance, batch_id, batch["at"], now)
        if found in ("ok", "pending"):
            if found == "ok":
                del book.batches[batch_id]
            continue
        del book.batches[batch_id]
        items = batch["items"]
        for key in items if found is None else [k for k in found if k in items]:
            attempts, ref = items[key][0] + 1, items[key][1]
            if attempts > MAX_ATTEMPTS:
                log.warning(f"site survey {key}: given up after {MAX_ATTEMPTS} failed runs (batch {batch_id}); "
                            "re-execute its last run from the UI")
                continue
            due = now + backoff_s(attempts, base_s, cap_s)
            book.retry[key] = [attempts, due, ref]
            log.info(f"site survey {key}: run of batch {batch_id} failed; attempt {attempts + 1} in "
                     f"{due - now:.0f} s")
