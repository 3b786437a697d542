"""Which failures are retried, and by whom.

Three layers, each for a failure the one below cannot absorb:

1. the HTTP client retries one request on transient answers (429, 5xx, timeouts, dropped or
   truncated bodies), honouring Retry-After (``clients/http.py``);
2. the step :data:`STEP_RETRY` retries an API step whose transient error outlived the client's
   attempts (an outage of minutes); never a deterministic error, which :func:`deterministic_failures`
   turns into ``dg.Failure(allow_retries=False)`` so the run fails at once with a plain message;
3. the instance's ``run_retries`` (``config/dagster.yaml``, ``retry_on_asset_or_op_failure: false``)
   restarts a run whose process died (OOM kill, host restart), not one whose steps failed.

There is no job-level ``dagster/max_retries`` tag: it would re-run a whole range for a step
failure the step policy already retried.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg

from ..clients.http import AuthenticationError
from ..export import ExportStopped, NothingStaged
from ..mapping import MappingError
from ..store import StagingSchemaMismatch

STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""API steps: a transient error that outlived the client's own retries."""

DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    AuthenticationError, MappingError, NothingStaged, StagingSchemaMismatch, ExportStopped,
)
"""Errors that fail the same way however often they are retried (later issues extend this)."""


@contextmanager
def deterministic_failures() -> Iterator[None]:
    """Turn a :data:`DETERMINISTIC_ERRORS` raised inside into a ``dg.Failure`` that the step
    retry policy does not retry; its message is the error's own (it never holds a secret)."""
    try:
        yield
    except DETERMINISTIC_ERRORS as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
