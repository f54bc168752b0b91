"""Who may call what.

- `/api/...`: open while protection is off; with protection on, a valid bearer token (any active
  named token, or the one from `generate_token`) or a logged-in staff session.
- `/admin/...` (the system endpoints): a Django staff user, by session (with CSRF on unsafe
  methods) or HTTP Basic for scripts, whatever the protection setting.

Tokens are looked up by their SHA-256, so the stored form never reveals them, and compared in
constant time. Failed attempts are logged without the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.db import DatabaseError
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from adminapi import config
from adminapi.audit import Actor
from adminapi.models import ApiToken

logger = logging.getLogger(__name__)

LAST_USED_EVERY_SECONDS = 60.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenUser:
    """The caller behind a valid API token (not a Django user)."""

    token: config.TokenInfo
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    @property
    def username(self) -> str:
        return f"token:{self.token.name}"


_last_used: dict[int, float] = {}


def _touch(token: config.TokenInfo) -> None:
    """Record when a token was last used, at most once a minute per worker: a database write
    per request would cost more than the request."""
    now = time.monotonic()
    if now - _last_used.get(token.id, -LAST_USED_EVERY_SECONDS) < LAST_USED_EVERY_SECONDS:
        return
    _last_used[token.id] = now
    with contextlib.suppress(DatabaseError):
        ApiToken.objects.filter(pk=token.id).update(last_used_at=timezone.now())


def client_address(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def for_view(request: Request) -> config.Config:
    """The configuration to let a caller in under: the worker's copy for views whose Redis
    script checks it is current (`config_checked_by_script`), else a checked one."""
    view = (request.parser_context or {}).get("view")
    if getattr(view, "config_checked_by_script", False):
        return config.known()
    return config.current()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TokenUser, config.TokenInfo] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            presented = hash_token(header[1].decode("ascii"))
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.") from None
        match = None
        for key, token in for_view(request).tokens.items():  # no early exit: constant time
            if hmac.compare_digest(key, presented):
                match = token
        if match is not None and match.valid_now():
            _touch(match)
            return TokenUser(match), match
        logger.warning(
            "Rejected an invalid, expired or revoked API token",
            extra={"address": client_address(request), "path": request.path},
        )
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scout"'


class StaffBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic for scripts, counted by django-axes like a login form: repeated failures
    from one address for one user name are locked out for a while (429)."""

    www_authenticate_realm = "scout"

    def authenticate_credentials(self, userid: str, password: str, request: Request = None):
        # django-axes marks the lockout on Django's request, not on DRF's wrapper.
        django_request = getattr(request, "_request", request)
        user = authenticate(request=django_request, username=userid, password=password)
        if getattr(django_request, "axes_locked_out", False):
            raise LockedOut()
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return user, None


class LockedOut(exceptions.APIException):
    status_code = 429
    default_detail = "Too many failed login attempts; try again later."
    default_code = "locked_out"


class ApiAccess(permissions.BasePermission):
    """Open while protection is off; a token or a staff session while it is on."""

    message = "API protection is on: send Authorization: Bearer <token>."

    def has_permission(self, request: Request, view: object) -> bool:
        if not for_view(request).protected_api:
            return True
        user = request.user  # authenticates now, only when protection asks for it
        if isinstance(user, TokenUser):
            return True
        if user is not None and user.is_authenticated and user.is_staff:
            return True
        raise exceptions.NotAuthenticated(self.message)


class StaffOnly(permissions.BasePermission):
    message = "Only staff users may use the system endpoints."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authentication required: a staff user's session or HTTP Basic credentials."
            )
        return bool(user.is_staff and user.is_active)


def actor_of(request: Request) -> Actor:
    """The audit name of a caller: a staff user, `token:<name>`, or anonymous."""
    try:
        user = request.user
    except exceptions.APIException:
        user = None
    name = getattr(user, "username", None) or "anonymous"
    return Actor(name, client_address(request))


API_AUTH = {
    "authentication_classes": [BearerTokenAuthentication, authentication.SessionAuthentication],
    "permission_classes": [ApiAccess],
}
STAFF_AUTH = {
    "authentication_classes": [StaffBasicAuthentication, authentication.SessionAuthentication],
    "permission_classes": [StaffOnly],
}
