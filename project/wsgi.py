"""The WSGI application that `scout serve` runs in each worker."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def with_chunked_bodies(app: WSGIApp, limit: Callable[[], int]) -> WSGIApp:
    """Give Django the body of a request sent with `Transfer-Encoding: chunked`.

    Django reads exactly CONTENT_LENGTH bytes of a body, and a chunked request has no such
    header, so Django would see an empty body. The server has already decoded the chunks (it
    says so with `wsgi.input_terminated`); this reads them here, up to one byte past the body
    limit, and hands Django the bytes with their length. A body over the limit keeps that
    length, so the body-size guard answers 413 exactly as for a declared Content-Length.
    """

    def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read(limit() + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application


def _application() -> WSGIApp:
    django_app = get_wsgi_application()  # sets Django up: the hot routes' front needs it
    from project.hot_routes import serving_hot_routes

    return with_chunked_bodies(
        serving_hot_routes(django_app), lambda: settings.SCOUT_MAX_BODY_BYTES
    )


application = _application()
