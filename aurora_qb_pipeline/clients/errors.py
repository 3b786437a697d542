"""The errors both API clients raise, and which statuses are worth another attempt.

Plain Python; ``clients.http`` raises them and re-exports them.
"""

from __future__ import annotations

from typing import Any, Optional

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """An API call failed. The message is safe to log: it never contains a credential."""

    def __init__(self, service: str, method: str, path: str, status: Optional[int], detail: str):
        self.service, self.method, self.path, self.status, self.detail = service, method, path, status, detail
        where = f"{service} {method} {path}"
        super().__init__(f"{where} -> {status}: {detail}" if status else f"{where}: {detail}")


class TransientApiError(ApiError):
    """Worth retrying: rate limited, server error, timeout, broken or truncated answer.

    ``maybe_applied``: the service may have carried the request out although its answer was lost
    (a body cut off, a read timeout, a dropped connection, a 5xx); False when the request surely
    was not carried out (429, a connection never made)."""

    def __init__(self, *args: Any, retry_after: Optional[float] = None, maybe_applied: bool = False):
        super().__init__(*args)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class PermanentApiError(ApiError):
    """Retrying will not help (bad credentials, unknown object, invalid payload)."""


class NotFoundError(PermanentApiError):
    pass


class MalformedAnswerError(PermanentApiError):
    """A successful status with a body that is not what the endpoint answers: not JSON at all, or
    JSON of another shape (an array for an object, a missing envelope key). Retrying gives the
    same answer; callers set the item aside with this message and go on."""


class PayloadTooLargeError(PermanentApiError):
    """The service refused the request body as too large (413): send less per request."""


class FileTooLargeError(PermanentApiError):
    """A download is larger than the caller's cap (its declared length or what arrived): the rest
    is not read, and retrying would fetch the same file."""


class AuthenticationError(PermanentApiError):
    """The service refused the credentials (401) or what they may do (403).

    Retrying cannot help, and every later request would be refused too: callers stop the run at
    once. ``credential`` names the environment variable(s) to check, never a value."""

    def __init__(self, service: str, method: str, path: str, status: Optional[int], detail: str, credential: str):
        self.credential = credential
        super().__init__(service, method, path, status, detail)
        what = "refused the credentials" if status == 401 else "denied access with the credentials"
        self.args = (
            f"{service} {what} in {credential} ({status} on {method} {path}: {detail}). "
            f"Check the value of {credential}; nothing was retried.",
        )


class NotProvisionedError(PermanentApiError):
    """403 on an endpoint of an optional feature (e.g. Aurora's pricing) that the key is not
    provisioned for. Unlike :class:`AuthenticationError` the credential stays usable: the caller
    switches that feature off and goes on."""


class RateBudgetExhausted(ApiError):
    """The client-side limiter could not admit a request within the caller's time budget.

    Sensors use this to end a tick early (and resume from their cursor) instead of blocking
    past Dagster's 60 s evaluation limit while runs are using the shared budget."""
