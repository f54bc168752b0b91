"""Who may call what.

- `/api/...`: open while protection is off; with protection on, a valid bearer token (any active
  named token, or the one from `generate_token`) or a logged-in staff session.
- `/admin/...` (the system endpoints): a Django staff user, by session (with CSRF on unsafe
  methods) or HTTP Basic for scripts, whatever the protection setting.

A caller of `/api/` is always let in under an explicit copy of the operator configuration
(system.config.Config), never an implicit one: `admit(request, under)`. The products' hot path
(decisions, rewards) uses the worker's copy without asking Redis, and its script refuses to
write when that copy is stale; `serve_checked` then lets the caller in (or not) once more under
the published configuration. Failed attempts are logged without the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import authenticate
from django.db import DatabaseError
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from core.scripts import ConfigMoved
from system import config, tokens
from system.audit import Actor

logger = logging.getLogger(__name__)

T = TypeVar("T")

PROTECTED = "API protection is on: send Authorization: Bearer <token>."


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


def client_address(request: HttpRequest | Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def bearer(request: Request, under: config.Config) -> TokenUser | None:
    """The token caller, if the request sends `Authorization: Bearer`; a token that is not
    valid under `under` is refused (401)."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower() != b"bearer":
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.")
    try:
        presented = header[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Malformed Authorization header.") from None
    token = tokens.match(under, presented)
    if token is None:
        logger.warning(
            "Rejected an invalid, expired or revoked API token",
            extra={"address": client_address(request), "path": request.path},
        )
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
    tokens.touch(token)
    return TokenUser(token)


def identify(request: Request, under: config.Config) -> Any:
    """Who calls: a TokenUser, a Django user with a session (CSRF checked on unsafe methods),
    or None."""
    token = bearer(request, under)
    if token is not None:
        return token
    session = authentication.SessionAuthentication().authenticate(request)
    return session[0] if session else None


def admit(request: Request, under: config.Config) -> Any:
    """Let a caller of `/api/` in under the configuration `under`; answer who it is (None for
    an anonymous caller of an open API). Raises 401 (or 403 for a session without CSRF)."""
    if not under.protected_api:
        return None
    caller = identify(request, under)
    if isinstance(caller, TokenUser):
        return caller
    if caller is not None and caller.is_authenticated and caller.is_staff:
        return caller
    raise exceptions.NotAuthenticated(PROTECTED)


def serve_checked(request: Request, operation: Callable[[config.Config], T]) -> T:
    """Let the caller in under the worker's copy of the configuration and run `operation`
    under it; when that copy turns out to be stale, do both once more under the published one.

    Stale shows in two ways: the operation's Redis script wrote nothing and raised ConfigMoved,
    or the caller was refused while a newer configuration (a new token, protection turned off)
    is published. A Redis or database failure while finding out answers the original error.
    """
    under = config.known()
    try:
        admit(request, under)
        return operation(under)
    except ConfigMoved as moved:
        fresh = config.adopt(moved.published)
    except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed) as refused:
        try:
            stale = config.moved_since(under)
        except (RedisError, DatabaseError):
            stale = False
        if not stale:
            raise refused from None
        fresh = config.current()
    admit(request, fresh)
    return operation(fresh)


def actor_of(request: HttpRequest | Request, under: config.Config | None = None) -> Actor:
    """The audit name of a caller: a staff user, `token:<name>`, or anonymous.

    The console passes Django's HttpRequest; the API's views pass DRF's Request and `under`."""
    try:
        if under is None:
            user = request.user
        else:
            assert isinstance(request, Request)  # identifying a caller takes DRF's Request
            user = identify(request, under)
    except exceptions.APIException:
        user = None
    name = getattr(user, "username", None) or "anonymous"
    return Actor(name, client_address(request))


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """DRF's form of `bearer`, for views outside `/api/`'s own access rule (the token check)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TokenUser, config.TokenInfo] | None:
        user = bearer(request, config.current())
        return (user, user.token) if user is not None else None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scout"'


class StaffBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic for scripts, counted by django-axes like a login form: repeated failures
    from one address for one user name are locked out for a while (429)."""

    www_authenticate_realm = "scout"

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
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


class StaffOnly(permissions.BasePermission):
    message = "Only staff users may use the system endpoints."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authentication required: a staff user's session or HTTP Basic credentials."
            )
        return bool(user.is_staff and user.is_active)


STAFF_AUTH: dict[str, Any] = {
    "authentication_classes": [StaffBasicAuthentication, authentication.SessionAuthentication],
    "permission_classes": [StaffOnly],
}
