"""Decisions and rewards served by plain Django, without DRF's request cycle.

Products call these two endpoints in their own request path, so every microsecond of framework
work is paid by every page they serve. DRF's cycle (its Request's lazy parsing, content
negotiation, the renderer and the template response it builds on) costs more than the rest of
Scout's work on a decision. Here a JSON body is read by orjson and the answer written by it; the
view's own method (`answer`) does what it does under DRF, checked by the same serializers, and
errors go through the same handler (`api.errors.exception_handler`), so both paths answer alike.

Only the common case is served here: a body sent as `application/json` (UTF-8) that orjson reads,
without a session cookie. Anything else (another content type or charset, an empty body, bytes
that are not JSON, JSON that orjson reads differently from Python's parser such as a lone
surrogate, or a staff user's browser session, whose CSRF check reads the body DRF's way) goes to
the DRF view unchanged, so the refusals and their wording stay those of one parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request

if TYPE_CHECKING:
    from api.views import HotPathView

UTF8 = frozenset({"utf-8", "utf8"})


class Unparsed:
    """The body is not one the fast path reads; DRF's parser will."""


UNPARSED = Unparsed()


def json_body(request: HttpRequest) -> object:
    """The request's JSON body as orjson reads it, or UNPARSED."""
    if request.content_type != "application/json":
        return UNPARSED
    if "HTTP_COOKIE" in request.META and settings.SESSION_COOKIE_NAME in request.COOKIES:
        return UNPARSED
    if (request.content_params or {}).get("charset", "utf-8").lower() not in UTF8:
        return UNPARSED
    body = request.body  # read under the size limit by project.middleware
    if not body:
        return UNPARSED
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return UNPARSED


def json_response(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), content_type="application/json", status=status)


def fast_view(
    view_class: type[HotPathView], drf_view: Callable[..., HttpResponse], initkwargs: Any
) -> Callable[..., HttpResponse]:
    """A Django view for `view_class`: the fast path where it applies, DRF's `drf_view`
    otherwise. It carries `cls` and `initkwargs` as DRF's views do, so drf-spectacular
    documents the endpoint from the class as usual.
    """
    allowed = ", ".join(view_class(**initkwargs).allowed_methods)

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        body = json_body(request) if request.method == "POST" else UNPARSED
        if body is UNPARSED:
            return drf_view(request, *args, **kwargs)
        handler = view_class(**initkwargs)
        drf_request = handler.request = Request(request)
        handler.args, handler.kwargs = args, kwargs
        try:
            response = json_response(handler.answer(drf_request, body, **kwargs))
        except Exception as exc:
            # DRF's own handling: the WWW-Authenticate header of a 401, then the API's handler.
            error = handler.handle_exception(exc)
            response = json_response(error.data, error.status_code)
            for name, value in error.items():
                if name.lower() != "content-type":
                    response[name] = value
        response["Allow"] = allowed
        return response

    view.cls = view_class  # type: ignore[attr-defined]
    view.initkwargs = initkwargs  # type: ignore[attr-defined]
    return csrf_exempt(view)
