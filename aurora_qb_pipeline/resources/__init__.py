from .aurora import AuroraClient
from .http import ApiError, NotFoundError, PermanentApiError, TransientApiError
from .quickbase import QuickbaseClient

__all__ = ["AuroraClient", "QuickbaseClient", "ApiError", "NotFoundError", "PermanentApiError", "TransientApiError"]
