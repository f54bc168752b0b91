"""Counts and times every HTTP request under its route template."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from project.observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, route_template

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
        HTTP_REQUEST_DURATION.labels(*labels).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(*labels).inc()
        return response
