"""Request guards that must run before any view reads the body."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse


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
