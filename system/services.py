"""Use cases of system administration. Each change is stored, audited, and then published so
every worker follows it from its next request. Values arrive checked (api.system_serializers);
what needs the system itself to check (a Redis that answers) is checked here."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from core import redis_client
from core.errors import InvalidInput, NotFound
from system import audit, config, tokens
from system.models import ApiToken, SystemConfig

logger = logging.getLogger(__name__)

MAX_CONTEXT_TTL_SECONDS = 30 * 86_400


@contextlib.contextmanager
def change(
    actor: audit.Actor | None, action: str, target: str = "", /, **details: Any
) -> Iterator[SystemConfig]:
    """One change of the configuration: locked, versioned, audited, then published to every
    worker once the transaction has committed. `details` are any keywords for the audit entry
    (the parameters before them are positional-only, so no detail can take their place)."""
    with transaction.atomic():
        SystemConfig.load()
        row = SystemConfig.objects.select_for_update().get(pk=1)
        yield row
        row.version += 1
        row.save()
        audit.record(actor, action, target, **details)
        transaction.on_commit(lambda: _publish(row))


def _publish(row: SystemConfig) -> None:
    try:
        config.changed(row)
    except RedisError as exc:
        # Stored, but workers learn of it only when their copy ages out (system.config).
        logger.warning("Configuration saved but not published to Redis: %s", exc)


# --- Protection and tokens ------------------------------------------------------------------


def set_protection(actor: audit.Actor | None, enabled: bool) -> bool:
    with change(actor, "set_protection", protected_api=enabled) as row:
        row.protected_api = enabled
    return enabled


def _store_token(
    raw: str, *, name: str, primary: bool, actor: audit.Actor | None, **extra: Any
) -> ApiToken:
    return ApiToken.objects.create(
        name=name,
        token_hash=tokens.hash_token(raw),
        prefix=raw[: len(tokens.PREFIX) + 4],
        suffix=raw[-4:],
        is_primary=primary,
        created_by=(actor or audit.Actor.system()).name,
        **extra,
    )


def generate_primary_token(actor: audit.Actor | None) -> str:
    """The contract's `generate_token`: a new token that replaces the previous one at once."""
    raw = tokens.new_token()
    with change(actor, "generate_token", "primary", token=raw[:10] + "…"):
        ApiToken.objects.filter(is_primary=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        _store_token(raw, name="primary", primary=True, actor=actor)
    return raw


def create_token(
    actor: audit.Actor | None, *, name: str, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A named token (for one client), optionally expiring."""
    if not name or not name.strip():
        raise InvalidInput("A token needs a name.")
    raw = tokens.new_token()
    with change(actor, "token_created", name.strip()):
        token = _store_token(raw, name=name.strip(), primary=False, actor=actor)
        if expires_at is not None:
            token.expires_at = expires_at
            token.save(update_fields=["expires_at"])
    return token, raw


def revoke_token(actor: audit.Actor | None, token_id: int) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"API token {token_id} not found.")
    with change(actor, "token_revoked", token.name, token=token.masked):
        token.revoked_at = token.revoked_at or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


# --- Configuration --------------------------------------------------------------------------


def system_config() -> dict[str, Any]:
    current = config.cached()
    return {
        "host": current.host,
        "port": current.port,
        "debug": current.debug,
        "protected_api": current.protected_api,
        "auth_token": current.primary_token_masked,
    }


def update_system_config(
    actor: audit.Actor | None,
    *,
    host: str | None = None,
    port: int | None = None,
    debug: bool | None = None,
) -> dict[str, Any]:
    """Store host, port and debug. Host and port apply at the next start; debug at once."""
    given = {"host": host, "port": port, "debug": debug}
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        raise InvalidInput("Send at least one of host, port, debug.")
    with change(actor, "system_config", **changes) as row:
        for field, value in changes.items():
            setattr(row, field, value)
    return system_config()


# --- Redis ----------------------------------------------------------------------------------


def _describe(url: str) -> tuple[str, int | None]:
    parts = urlparse(url)
    if parts.scheme == "unix":
        return parts.path, None
    return parts.hostname or "", parts.port or 6379


def redis_health() -> dict[str, Any]:
    host, port = _describe(redis_client.current_url())
    try:
        facts = redis_client.server_health()
    except RedisError as exc:
        return {
            "redis_is_connected": False,
            "redis_total_keys": None,
            "error_message": str(exc) or exc.__class__.__name__,
            "redis_host": host,
            "redis_port": port,
        }
    return {
        "redis_is_connected": True,
        **facts,
        "error_message": None,
        "redis_host": host,
        "redis_port": port,
    }


def update_redis_config(
    actor: audit.Actor | None,
    *,
    host: str | None = None,
    port: int | None = None,
    ttl: int | None = None,
) -> dict[str, Any]:
    """Switch every worker to another Redis (after checking it answers) and/or change the
    context TTL for new decisions. On a failed connection nothing changes. A port alone keeps
    the current host, a host alone the current port (6379 when none was set)."""
    current = config.cached()
    new_url = None
    if host is not None or port is not None:
        host = host if host is not None else current.redis_host
        if not host:
            raise InvalidInput("host: give the Redis host name or address with the port.")
        port = port if port is not None else current.redis_port or 6379
        new_url = config.redis_url_of(host, port)
        try:
            redis_client.probe(new_url)
        except (RedisError, OSError) as exc:
            raise InvalidInput(
                f"Could not connect to Redis at {host}:{port}: {exc}. "
                "The current connection is kept."
            ) from None
    if new_url is None and ttl is None:
        raise InvalidInput("Send host and port, ttl, or both.")
    details = {"redis": new_url, "ttl": ttl}
    with change(actor, "redis_config", **details) as row:
        if new_url is not None:
            row.redis_host, row.redis_port = _describe(new_url)
        if ttl is not None:
            row.context_ttl_seconds = ttl
    if new_url is not None:
        # Workers still on the old Redis see the new version there and follow.
        with contextlib.suppress(RedisError):
            config.publish_version(row.version, redis_client.client_for(new_url))
    updated = config.cached()
    host, port = _describe(updated.redis_url)
    return {
        "message": "Redis config updated. Connection re-established.",
        "redis_host": host,
        "redis_port": port,
        "redis_context_ttl": updated.context_ttl_seconds,
    }


# --- Start-up -------------------------------------------------------------------------------


def bootstrap_from_environment() -> list[str]:
    """Apply SCOUT_ADMIN_USER/PASSWORD, SCOUT_PROTECTED_API and SCOUT_API_TOKEN at start."""
    done = []
    username = os.environ.get("SCOUT_ADMIN_USER", "").strip()
    password = os.environ.get("SCOUT_ADMIN_PASSWORD", "")
    if username and password:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        done.append(f"{'created' if created else 'updated'} superuser {username}")
    elif username or password:
        raise InvalidInput("Set both SCOUT_ADMIN_USER and SCOUT_ADMIN_PASSWORD, or neither.")
    raw = os.environ.get("SCOUT_API_TOKEN", "").strip()
    if raw:
        if len(raw) < 32:
            raise InvalidInput("SCOUT_API_TOKEN must be at least 32 characters long.")
        if not ApiToken.objects.filter(token_hash=tokens.hash_token(raw), revoked_at=None).exists():
            with change(None, "token_installed", "SCOUT_API_TOKEN"):
                ApiToken.objects.filter(is_primary=True, revoked_at=None).update(
                    revoked_at=timezone.now()
                )
                _store_token(raw, name="primary (SCOUT_API_TOKEN)", primary=True, actor=None)
            done.append("installed SCOUT_API_TOKEN")
    if settings.SCOUT_PROTECTED_API and not SystemConfig.load().protected_api:
        with change(
            None, "set_protection", protected_api=True, source="SCOUT_PROTECTED_API"
        ) as row:
            row.protected_api = True
        done.append("turned API protection on")
    return done
