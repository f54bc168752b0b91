"""Middleware of every request: its metrics, and the guard that must run before any view
reads the body."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import Resolver404, resolve

from core.observability.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    count,
    observe,
    route_template,
)

UNMATCHED = "unmatched"
# Any other method a client invents shares one label, so it cannot multiply series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(request: HttpRequest) -> str:
    """The route template of a request; a path that matches no route shares one label."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # answered before URL resolution (for instance a 413 from a guard)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    return route_template(match.route) if match.route else UNMATCHED


class RequestMetricsMiddleware:
    """Outermost middleware, so that answers given by other middleware are counted too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        labels = (method, _route(request), str(response.status_code))
        observe(HTTP_REQUEST_DURATION, time.perf_counter() - started, *labels)
        count(HTTP_REQUESTS, *labels)
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies over SCOUT_MAX_BODY_BYTES with 413, before they are read whole.

    Django checks the declared Content-Length against DATA_UPLOAD_MAX_MEMORY_SIZE when the body
    is first touched; DRF reads the raw stream instead and would skip that check, so the body is
    loaded here, once, under Django's limit.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                request.body  # noqa: B018 - loads the body under Django's size check
            except OSError:  # the socket's receive timeout (project.worker) expired
                return JsonResponse(
                    {"detail": "The request body did not arrive in time."},
                    status=408,
                    headers={"Connection": "close"},
                )
            except RequestDataTooBig:
                limit = settings.SCOUT_MAX_BODY_BYTES
                return JsonResponse(
                    {
                        "detail": f"Request body is larger than the limit of {limit} bytes.",
                        "limit_bytes": limit,
                    },
                    status=413,
                )
        return self.get_response(request)
