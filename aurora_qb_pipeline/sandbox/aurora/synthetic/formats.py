"""Formats shared by generated and runtime records: timestamps, ids, API keys, addresses."""

from __future__ import annotations

import hashlib
import random
import unicodedata
import uuid
from datetime import datetime, timezone
from typing import Optional

from .catalogue import Place


def format_timestamp(moment: datetime, iso: bool = False) -> str:
    """Aurora's usual "YYYY-MM-DD HH:MM:SS UTC", or ISO-8601 "YYYY-MM-DDTHH:MM:SSZ"."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S UTC")


def format_iso_ms(moment: datetime) -> str:
    """ISO-8601 with milliseconds, "2024-01-25T07:21:30.507Z" (the site-survey request's format)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; accepts both formats (and any ISO-8601 offset)."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    elif text.endswith("Z"):
        text = text[:-1]
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def token_for_tenant(tenant_id: str) -> str:
    """The sandbox API key of a generated tenant: ``sk_sand_`` + 32 hex characters from its id."""
    return "sk_sand_" + hashlib.sha256(f"aurora-sandbox-key:{tenant_id}".encode()).hexdigest()[:32]


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ascii_slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def one_line_address(street: Optional[str], city: str, region: Optional[str], postal: Optional[str],
                      place: Place) -> str:
    """Geocoder-style one-line address; parts that are None are left out."""
    def join(*parts: Optional[str], sep: str) -> str:
        return sep.join(p for p in parts if p)

    country = "USA" if place.country == "United States" else place.country
    if place.number_first:
        locality = join(city, join(region, postal, sep=" "), sep=", ")
    else:
        locality = join(join(postal, city, sep=" "), region, sep=", ")
    return join(street, locality, country, sep=", ")

