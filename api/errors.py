"""One error shape for the whole API: `{"detail": "...", ...}` with the right status code.

DRF's EXCEPTION_HANDLER and Django's handler400/404/500 point here; the refusals themselves are
core.errors.ServiceError and its kinds, raised by the services."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.validation import first_message
from core.errors import ServiceError
from core.scripts import ConfigMoved
from system import config

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status_code)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ClusterDownError):
        logger.warning("Redis unavailable: %s", exc)
        return Response(
            {"detail": "Redis is unavailable; retry shortly.", "reason": str(exc)[:200]},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, ConfigMoved):  # changed again while the caller was checked again
        return Response(
            {"detail": "The API configuration is changing; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unavailable: %s", exc)
        return Response(
            {"detail": "The database is unavailable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            {"detail": first_message(exc.detail), "errors": exc.detail},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            {"detail": f"Invalid JSON body: {exc.detail}"}, status=status.HTTP_400_BAD_REQUEST
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        body: dict[str, Any] = {"detail": "Internal server error."}
        if _debug_for_staff(context.get("request")):
            body["error"] = f"{exc.__class__.__name__}: {exc}"[:500]
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return response


def _debug_for_staff(request: Any) -> bool:
    """With debug on, staff callers see what went wrong in error bodies; nobody else does."""
    try:
        user = getattr(request, "_user", None)
        return bool(config.cached().debug and user is not None and user.is_staff)
    except Exception:  # never let the error path fail
        return False


def locked_out(request: HttpRequest, response: object = None, credentials: object = None):
    """django-axes' answer to a locked-out address and user: JSON for scripts."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return JsonResponse(
        {"detail": f"Too many failed login attempts; try again in {minutes} minutes."},
        status=429,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": f"No such endpoint: {request.path}"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Bad request."}, status=400)
