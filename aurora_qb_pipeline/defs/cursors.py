"""Sensor cursors as dataclasses stored as JSON text (Dagster keeps a sensor's cursor as a string)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Optional, TypeVar

C = TypeVar("C", bound="JsonCursor")


class JsonCursor:
    """Mixin for a ``@dataclass`` cursor: ``parse`` reads what ``dump`` wrote. Keys this version
    does not know (written by an older or newer one) are dropped, missing keys take their default,
    so a deploy never breaks a running sensor's cursor."""

    @classmethod
    def parse(cls: type[C], raw: Optional[str]) -> C:
        values = json.loads(raw) if raw else {}
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in values.items() if k in known})

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]
