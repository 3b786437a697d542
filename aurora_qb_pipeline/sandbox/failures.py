"""Scripted failures: the next N requests to a chosen path fail transiently (sandbox extension).

Neither API offers this; the random fault rates of :class:`~.common.SandboxConfig` make failures
of a *kind* likely, while a test of a retry needs a failure of *one* request, exactly N times:
"the next 3 downloads of this file answer 503", "every request of this site survey answers 503
until released". A rule matches a method and a path (regular expression, whole path) and answers
the next ``times`` matching requests itself, before the API sees them (so nothing is applied),
with ``status`` (a retryable one: 429, 500, 502, 503, 504) and, when given, ``Retry-After``
seconds (scaled by the time scale like every duration of the sandbox). ``times=None`` fails every
matching request until :meth:`Failure.clear`. In process::

    rule = sandbox.aurora.failures.add("GET", r"/files/.*", status=503, times=2)
    ...
    assert rule.served == 2

Answered failures are in the request log with fault ``"scripted"``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Optional

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class Failure:
    method: str
    path: re.Pattern
    status: int
    times: Optional[int]  # None: until cleared
    retry_after_s: Optional[float] = None
    served: int = 0
    cleared: bool = False

    def clear(self) -> None:
        """Stop failing (the requests after this one go through)."""
        self.cleared = True

    @property
    def spent(self) -> bool:
        return self.cleared or (self.times is not None and self.served >= self.times)


class Failures:
    """The scripted failures of one sandbox server (thread-safe: tests add them while it runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Failure] = []

    def add(self, method: str, path: str, status: int = 503, times: Optional[int] = 1,
            retry_after_s: Optional[float] = None) -> Failure:
        if status not in TRANSIENT_STATUSES:
            raise ValueError(f"a scripted failure is transient: status one of {TRANSIENT_STATUSES}, not {status}")
        rule = Failure(method.upper(), re.compile(path), status, times, retry_after_s)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            for rule in self._rules:
                rule.clear()
            self._rules.clear()

    def take(self, method: str, path: str) -> Optional[Failure]:
        """The rule that fails this request (counted as served), or None."""
        if not self._rules:
            return None
        with self._lock:
            self._rules = [rule for rule in self._rules if not rule.spent]
            for rule in self._rules:
                if rule.method == method and rule.path.fullmatch(path):
                    rule.served += 1
                    return rule
        return None
