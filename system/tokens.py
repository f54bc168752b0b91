"""API tokens: how they are made, stored and recognised.

Tokens are 32 random bytes, URL-safe, with a recognisable prefix (for secret scanners). Only a
SHA-256 of a token is stored, so the stored form never reveals it; a presented token is
compared with every valid one in constant time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time

from django.db import DatabaseError
from django.utils import timezone

from system.config import Config, TokenInfo
from system.models import ApiToken

PREFIX = "scout_"
LAST_USED_EVERY_SECONDS = 60.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def match(config: Config, presented: str) -> TokenInfo | None:
    """The valid token that `presented` is, under `config`; None if it is none of them."""
    digest = hash_token(presented)
    found = None
    for stored, token in config.tokens.items():  # no early exit: constant time
        if hmac.compare_digest(stored, digest):
            found = token
    return found if found is not None and found.valid_now() else None


_last_used: dict[int, float] = {}


def touch(token: TokenInfo) -> None:
    """Record when a token was last used, at most once a minute per worker: a database write
    per request would cost more than the request."""
    now = time.monotonic()
    if now - _last_used.get(token.id, -LAST_USED_EVERY_SECONDS) < LAST_USED_EVERY_SECONDS:
        return
    _last_used[token.id] = now
    with contextlib.suppress(DatabaseError):
        ApiToken.objects.filter(pk=token.id).update(last_used_at=timezone.now())
