"""Downloading the images a site-survey upload names, as Aurora says it does.

Aurora's guide: image fields take a public URL and "Aurora will download and save images from
given URL". The emulator does that in the background (never while answering the upload), with a
real-seconds timeout and a size cap, following redirects (storage URLs often redirect), and keeps
what it got: status code, content type, size and SHA-256, or the error. It does not judge the
outcome: whether Aurora refuses an upload whose images cannot be fetched is not published, so the
upload is answered 200 either way and the result is visible only through the admin view
(``GET /_sandbox/site_surveys/{id}``) and :meth:`SiteSurveysMixin.wait_for_image_fetches`.
No credential is sent: a URL that needs one (a Quickbase file URL without open access) fails with
the server's 401/403, which is what the real service would see.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import requests

MAX_BYTES = 25 * 1024 * 1024
USER_AGENT = "Aurora-Image-Fetcher (aurora_qb_pipeline sandbox)"
PENDING, FETCHED, FAILED = "pending", "fetched", "failed"


def fetch(url: str, timeout_s: float) -> dict:
    """GET ``url``: ``{"status": fetched|failed, "status_code", "content_type", "bytes", "sha256", "error"}``."""
    result: dict = {"status": FAILED, "status_code": None, "content_type": None, "bytes": None, "sha256": None,
                    "error": None}
    try:
        with requests.get(url, timeout=timeout_s, stream=True, headers={"User-Agent": USER_AGENT}) as response:
            result["status_code"] = response.status_code
            result["content_type"] = response.headers.get("Content-Type")
            if not 200 <= response.status_code < 300:
                result["error"] = f"HTTP {response.status_code}"
                return result
            digest, size = hashlib.sha256(), 0
            for block in response.iter_content(64 * 1024):
                size += len(block)
                if size > MAX_BYTES:
                    result["error"] = f"larger than {MAX_BYTES} bytes"
                    return result
                digest.update(block)
            result.update(status=FETCHED, bytes=size, sha256=digest.hexdigest())
    except requests.Timeout:
        result["error"] = f"no answer within {timeout_s:.3g} s"
    except requests.ConnectionError:
        result["error"] = "connection failed"
    except requests.RequestException as exc:  # the message may hold the URL: keep only the kind
        result["error"] = type(exc).__name__
    return result


class ImageFetcher:
    """A small worker pool; ``done(result)`` is called from a worker thread after each fetch."""

    def __init__(self, workers: int = 4) -> None:
        self._workers = workers
        self._executor: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, url: str, timeout_s: float, done: Callable[[dict], None]) -> None:
        with self._lock:
            if self._closed:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="aurora-image-fetch")
            self._executor.submit(lambda: done(fetch(url, timeout_s)))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
