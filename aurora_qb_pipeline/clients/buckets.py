"""Where the shared rate budget lives when several hosts share it: pyrate-limiter's Postgres bucket.

One machine shares its budget through a file-locked SQLite file (``http.build_limiter``); a
deployment whose run workers, sensors and receiver run on several hosts (containers, pods) keeps
the bucket in Postgres instead, usually the database of the Dagster instance. The library counts
each window under a table lock, on the database server's clock, so hosts whose clocks disagree
still share one budget.

A Postgres location is a URL, ``postgresql://user@host:port/dbname`` (SQLAlchemy's
``postgresql+psycopg://`` is accepted too, so one value can serve the webhook inbox as well). It
holds no password (``Settings`` refuses one): libpq reads PGPASSWORD or ~/.pgpass, and whatever the
URL leaves out (even all of it: ``postgresql://``) from PGHOST, PGPORT, PGUSER and PGDATABASE.

Each bucket is a table named after the bucket's key, a hash (``RateLimitSettings.bucket_key``):
neither a tenant id nor a credential appears in the database.
"""

from __future__ import annotations

from typing import Any, Optional

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
APPLICATION_NAME = "aurora_qb rate budget"  # how the bucket's connections show in pg_stat_activity
CONNECT_TIMEOUT_S = 10


def is_postgres_url(location: Optional[str]) -> bool:
    """True for ``postgresql://...`` (and ``postgres://``, ``postgresql+psycopg://``)."""
    text = str(location or "")
    return "://" in text and text.split("://", 1)[0].lower() in POSTGRES_SCHEMES


def libpq_url(url: str) -> str:
    """The URL as libpq takes it (SQLAlchemy's driver suffix dropped)."""
    return "postgresql://" + url.split("://", 1)[1]


def postgres_bucket(rates: list[Any], table: str, url: str) -> Any:
    """A ``PostgresBucket`` on a small pool of its own (one connection for admissions, which the
    limiter serialises, one for the library's background leak of old entries).

    Sessions are pinned to UTC: the library stores naive timestamps converted in the session's
    time zone, so hosts configured for different zones, or a daylight-saving change, would
    otherwise shift each other's windows. Connecting times out after 10 s and a connection is
    checked before use, so a restarted database costs one reconnect, not a failed request. A
    database that cannot be reached is reported at once with libpq's reason (wrong password, no
    such host ...), not as a pool timeout."""
    try:
        import psycopg
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import PostgresBucket
    except ImportError as exc:  # pragma: no cover - the extra is part of [test]
        raise RuntimeError(
            "a rate budget in Postgres needs the postgres extra: pip install 'aurora_qb_pipeline[postgres]'"
        ) from exc
    conninfo = libpq_url(url)
    options = {"connect_timeout": CONNECT_TIMEOUT_S, "options": "-c TimeZone=UTC", "application_name": APPLICATION_NAME}
    try:  # one plain connection first: the pool would only log why it cannot connect, and retry
        psycopg.connect(conninfo, **options).close()
    except psycopg.Error as exc:  # libpq names host, port, user and database, never a password
        raise RuntimeError(f"the shared rate budget's database cannot be reached: {str(exc).strip()}") from None
    pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True, timeout=30.0, kwargs=options,
                          name="aurora_qb_rate_budget", check=ConnectionPool.check_connection)
    try:
        return PostgresBucket(pool, table, rates)
    except BaseException:
        pool.close()
        raise
