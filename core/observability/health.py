"""Readiness checks: can this process reach the database and Redis right now?"""

from __future__ import annotations

from django.db import DatabaseError, connection

from core import redis_client


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def database_problem() -> str | None:
    """None when a trivial query succeeds, else why it did not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return _reason(exc)
    return None


def redis_problem() -> str | None:
    """None when Redis answers a PING (within SCOUT_REDIS_TIMEOUT_SECONDS), else why not."""
    try:
        redis_client.ping()
    except Exception as exc:  # any failure of the client means "not ready", with its reason
        return _reason(exc)
    return None
