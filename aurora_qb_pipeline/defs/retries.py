"""Which failures are retried, and by whom.

Three layers, each for a failure the one below cannot absorb:

1. the HTTP client retries one request on transient answers (429, 5xx, timeouts, dropped or
   truncated bodies), honouring Retry-After (``clients/http.py``);
2. the step :data:`STEP_RETRY` retries an API step whose transient error outlived the client's
   attempts (an outage of minutes); never a deterministic error, which :func:`deterministic_failures`
   turns into ``dg.Failure(allow_retries=False)`` so the run fails at once with a plain message.
   The staging steps go further (:func:`staging_failures`): there *only* the transient errors
   (:data:`TRANSIENT_ERRORS`) are retried, anything else fails at once. Bad data never gets this
   far: a malformed answer or value quarantines its project or design and the step goes on;
3. the instance's ``run_retries`` (``config/dagster.yaml``, ``retry_on_asset_or_op_failure: false``)
   restarts a run whose process died (OOM kill, host restart), not one whose steps failed.

There is no job-level ``dagster/max_retries`` tag: it would re-run a whole range for a step
failure the step policy already retried.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb

from ..clients.http import AuthenticationError, RateBudgetExhausted, TransientApiError
from ..export import ExportStopped, NothingStaged
from ..line_items import LineItemsError
from ..mapping import MappingError
from ..store import StagingSchemaMismatch

STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""API steps: a transient error that outlived the client's own retries."""

DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    AuthenticationError, MappingError, NothingStaged, StagingSchemaMismatch, ExportStopped, LineItemsError,
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


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientApiError, RateBudgetExhausted, duckdb.IOException, OSError,
)
"""What may succeed on a later attempt: an API outage that outlived the client's retries, the rate
budget, the DuckDB file held by another process (its connect already waits a while), the disk."""


@contextmanager
def staging_failures() -> Iterator[None]:
    """For the staging steps: only :data:`TRANSIENT_ERRORS` reach the step retry policy; every
    other error fails the step at once (``allow_retries=False``). A deterministic error keeps its
    own plain message; any other is a bug that retrying cannot fix, and says so."""
    try:
        yield
    except (dg.Failure, *TRANSIENT_ERRORS):
        raise
    except DETERMINISTIC_ERRORS as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except Exception as exc:  # noqa: BLE001 - classified, re-raised
        raise dg.Failure(
            description=f"{type(exc).__name__}: {exc} (not retried: the same input fails the same way)",
            allow_retries=False,
        ) from exc
