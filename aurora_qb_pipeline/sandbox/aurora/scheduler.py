"""A timer thread for the emulator's background work (design service, jobs, webhook retries).

Callbacks run in the scheduler's one thread and must be quick: they take the state lock briefly
or hand slow work (HTTP deliveries) to an executor. The thread starts on first use, so a state
that never schedules anything never starts a thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)


class Timer:
    """A scheduled call; :meth:`cancel` keeps it from running if it has not run yet."""

    __slots__ = ("due", "callback", "args", "cancelled")

    def __init__(self, due: float, callback: Callable[..., Any], args: tuple) -> None:
        self.due, self.callback, self.args, self.cancelled = due, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs callbacks at ``time.monotonic()`` deadlines, in order, from one daemon thread."""

    def __init__(self, name: str = "aurora-sandbox-scheduler") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(time.monotonic() + max(0.0, delay_s), callback, args)
        with self._cond:
            if self._stopped:
                timer.cancel()
                return timer
            heapq.heappush(self._heap, (timer.due, next(self._counter), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                timer.callback(*timer.args)
            except Exception:  # a failing callback must not stop the emulator's clock
                log.exception("sandbox background task %r failed", timer.callback)
