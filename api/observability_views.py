"""The operator endpoints: /metrics, /logs/stream, /healthz and /readyz."""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from api.access import STAFF_AUTH
from api.serializers import errors
from bandit.metrics import ActiveTestsCollector
from core.observability import health
from core.observability.metrics import write_queued
from core.observability.stream import LogStream, parse_query


def _read_only(
    view: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """GET and HEAD only; any other method gets the API's JSON 405 (CSRF has nothing to guard
    on views that change nothing, and would answer HTML)."""

    @csrf_exempt
    @functools.wraps(view)
    def guarded(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                {"detail": f'Method "{request.method}" not allowed.'}, status=405
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return guarded


class _DefaultRegistry:
    """The process's own registry, when not running under `scout serve`'s multiprocess mode."""

    def collect(self):  # noqa: ANN201 - the Prometheus collector protocol
        yield from REGISTRY.collect()


def _registry() -> CollectorRegistry:
    """A fresh registry per scrape: every worker's values (or this process's) plus the values
    computed at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(ActiveTestsCollector())
    return registry


def _token_ok(request: HttpRequest) -> bool:
    expected = settings.SCOUT_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


@_read_only
def metrics(request: HttpRequest) -> HttpResponse:
    """The whole host's metrics; OpenMetrics when the scraper's Accept asks for it."""
    if not _token_ok(request):
        response = JsonResponse(
            {"detail": "/metrics needs the bearer token set in SCOUT_METRICS_TOKEN."}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    write_queued()  # this worker's own writes, up to now (the others' are at most 0.5 s old)
    return HttpResponse(encoder(_registry()), content_type=content_type)


@_read_only
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers; nothing else is checked (liveness)."""
    return JsonResponse({"status": "ok"})


@_read_only
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and Redis answer (readiness); 503 names what does not."""
    problems = {
        name: problem
        for name, problem in (
            ("database", health.database_problem()),
            ("redis", health.redis_problem()),
        )
        if problem is not None
    }
    if problems:
        return JsonResponse(
            {
                "status": "unavailable",
                "detail": f"Not ready: {', '.join(problems)} unreachable.",
                "reasons": problems,
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": {"database": "ok", "redis": "ok"}})


class _JsonErrors(BaseContentNegotiation):
    """Errors are JSON whatever the client accepts (an EventSource accepts only
    text/event-stream); a successful answer is the stream itself and needs no renderer."""

    def select_parser(self, request, parsers):  # noqa: ANN001, ANN201 - DRF's API
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):  # noqa: ANN001, ANN201
        return renderers[0], renderers[0].media_type


class LogStreamView(APIView):
    """`GET /logs/stream`: live log entries as Server-Sent Events, for staff."""

    authentication_classes = STAFF_AUTH["authentication_classes"]
    permission_classes = STAFF_AUTH["permission_classes"]
    content_negotiation_class = _JsonErrors

    @extend_schema(
        tags=["Observability"],
        summary="Live log entries of every worker, as Server-Sent Events (staff only)",
        parameters=[
            OpenApiParameter("level", str, description="The lowest level to show."),
            OpenApiParameter("test_id", str, description="Only entries about this Test."),
            OpenApiParameter("last_event_id", str, description="Resume after this event id."),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="`id:` and `data:` (one JSON entry) per event."
            ),
            **errors(400, 401, 403, 429, 503),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = parse_query(
            # Browsers send the header when they reconnect; the parameter serves the first
            # connection of a viewer that remembers where it was.
            last_event_id=request.headers.get("Last-Event-ID")
            or request.query_params.get("last_event_id"),
            level=request.query_params.get("level"),
            test_id=request.query_params.get("test_id"),
        )
        stream = LogStream(query, user=request.user.get_username())
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
        return response
