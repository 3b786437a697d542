"""Gates: hold one request at a chosen point until a test lets it go (sandbox extension).

Neither API has anything like it; it exists so a test can act at an exact moment of a run, such
as killing the run's process while its second Quickbase upsert is in flight. A gate matches a
method and a path (regular expression, whole path), lets ``skip`` matching requests through, and
holds the next one:

* ``stage="before"``: when it arrives, before the API does anything with it;
* ``stage="after"``: after the API has handled it (an upsert is applied), before the answer is
  sent back.

The held request waits (without blocking the server) until :meth:`Gate.release`; a gate holds
one request only. A ``trickle`` gate (stage "before") answers instead: a 200 whose body is a
space every ``TRICKLE_EVERY_S`` until the gate is released, then an empty JSON object. That is a
connection that hangs while never being idle, so no read timeout of the client ends it: the
socket hang a run's maximum runtime exists for. In process:
``gate = sandbox.quickbase.gates.add("POST", "/v1/records", "after", skip=1)``, then
``gate.wait_reached(timeout)`` and ``gate.release()``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Optional

STAGES = ("before", "after")
TRICKLE_EVERY_S = 0.25


@dataclass
class Gate:
    method: str
    path: re.Pattern
    stage: str
    skip: int = 0
    trickle: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    seen: int = 0

    def wait_reached(self, timeout: float) -> bool:
        """True once a request is held here (False if none came within ``timeout`` seconds)."""
        return self.reached.wait(timeout)

    def release(self) -> None:
        self.released.set()


class Gates:
    """The gates of one sandbox server (thread-safe: tests add them while the server runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: list[Gate] = []

    def add(self, method: str, path: str, stage: str = "before", skip: int = 0, trickle: bool = False) -> Gate:
        if stage not in STAGES or (trickle and stage != "before"):
            raise ValueError(f"stage must be one of {STAGES} ('before' for a trickle gate), not {stage!r}")
        gate = Gate(method.upper(), re.compile(path), stage, skip, trickle)
        with self._lock:
            self._gates.append(gate)
        return gate

    def release_all(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.release()
            self._gates.clear()

    def _take(self, method: str, path: str, stage: str) -> Optional[Gate]:
        with self._lock:
            for gate in self._gates:
                if gate.stage == stage and gate.method == method and gate.path.fullmatch(path):
                    gate.seen += 1
                    if gate.seen > gate.skip:
                        self._gates.remove(gate)
                        return gate
        return None

    async def pass_through(self, method: str, path: str, stage: str, send=None) -> bool:
        """Hold the request here if a gate is set for it, until that gate is released. True if a
        trickle gate answered it (nothing more to do), False to go on."""
        if not self._gates:
            return False
        gate = self._take(method, path, stage)
        if gate is None:
            return False
        gate.reached.set()
        if gate.trickle and send is not None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            while not gate.released.is_set():
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                await asyncio.sleep(TRICKLE_EVERY_S)
            await send({"type": "http.response.body", "body": b"{}", "more_body": False})
            return True
        while not gate.released.is_set():
            await asyncio.sleep(0.01)
        return False
