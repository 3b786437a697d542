"""HTTP clients of the two APIs, plain Python (no Dagster): they own the wire formats."""

from .aurora import AuroraClient, Page
from .base import ApiClient, ClientOptions
from .http import (
    ApiError,
    AuthenticationError,
    MalformedAnswerError,
    NotFoundError,
    NotProvisionedError,
    PayloadTooLargeError,
    PermanentApiError,
    RateBudgetExhausted,
    TransientApiError,
)
from .quickbase import QuickbaseClient, UpsertResult

__all__ = [
    "ApiClient", "ApiError", "AuroraClient", "AuthenticationError", "ClientOptions", "MalformedAnswerError",
    "NotFoundError", "NotProvisionedError", "Page", "PayloadTooLargeError", "PermanentApiError", "QuickbaseClient", "RateBudgetExhausted",
    "TransientApiError", "UpsertResult",
]
