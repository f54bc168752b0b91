"""The WSGI front of the two routes products call in their own request path: decisions and
rewards go straight to their view, through the middleware that applies to them, without the
rest of Django's request handler.

Measured under load, Django's handler (its request signals, the whole middleware chain with the
console's middleware skipping itself one by one, URL resolution, the response's closing
signal) cost a third of a decision's CPU time in a worker, more than the Thompson sample and
the Redis script together. Here a request to one of the two routes gets:

- its view, found once at start-up from the URL configuration (`api.urls`), so the routes are
  named in one place;
- the middleware of settings.MIDDLEWARE that applies to an API call without a session cookie,
  in the same order, each wrapped as Django wraps it (an exception becomes the error answer
  Django would give). That is every middleware that is not console-only (project.console_only):
  request metrics, the body-size guard, the security headers, CSRF (these views are exempt) and
  the framing header. Middleware hooks that only Django's handler calls (process_view,
  process_exception) do not run; none of these defines one that matters for an exempt view;
- the database connection's upkeep that Django's request signals would do, when the request
  used the database at all (a Test not yet in this worker's snapshots).

Anything else (another method or path, or a request with a cookie, which may be a staff user's
session) goes to Django's handler as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, resolve, reverse
from django.utils.module_loading import import_string

from project.console_only import ConsoleOnly

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Handler = Callable[[HttpRequest], HttpResponseBase]

# The route names in api.urls, and whether the route ends in its Test id.
HOT_ROUTES = {"fetch_recommended_variant": False, "update_model": True}
ID_PLACEHOLDER = "0"


class Route:
    """One hot route: how to recognise its paths and what serves them."""

    def __init__(self, name: str, takes_id: bool) -> None:
        if takes_id:
            path = reverse(name, kwargs={"cb_model_id": ID_PLACEHOLDER})
            self.prefix = path.removesuffix(ID_PLACEHOLDER)
        else:
            path = self.prefix = reverse(name)
        self.takes_id = takes_id
        match = resolve(path)
        self.view = match.func
        self.url_name = match.url_name
        self.route = match.route  # the metrics label (project.middleware)

    def kwargs_for(self, path: str) -> dict[str, str] | None:
        """The view's keyword arguments for `path`, or None when `path` is not this route's
        (with or without a trailing slash, as api.urls accepts it)."""
        if not self.takes_id:
            return {} if path in (self.prefix, self.prefix + "/") else None
        if not path.startswith(self.prefix):
            return None
        test_id = path[len(self.prefix) :]
        test_id = test_id.removesuffix("/")
        if not test_id or "/" in test_id:
            return None
        return {"cb_model_id": test_id}


def _api_middleware(view: Handler) -> Handler:
    """`view` wrapped in the middleware of settings.MIDDLEWARE that is not console-only, in
    order, each as Django's handler wraps it."""
    handler: Any = convert_exception_to_response(view)
    for path in reversed(settings.MIDDLEWARE):
        middleware = import_string(path)
        if isinstance(middleware, type) and issubclass(middleware, ConsoleOnly):
            continue
        handler = convert_exception_to_response(middleware(handler))
    return handler


def serving_hot_routes(django_app: WSGIApp) -> WSGIApp:
    """The WSGI application: the hot routes served here, everything else by `django_app`."""
    routes = [Route(name, takes_id) for name, takes_id in HOT_ROUTES.items()]

    def view(request: HttpRequest) -> HttpResponseBase:
        match = request.resolver_match
        assert match is not None
        response = match.func(request, **match.kwargs)
        render = getattr(response, "render", None)
        if callable(render):  # DRF's answer, for the bodies its view reads (as Django does)
            response = render()
        return response

    handler = _api_middleware(view)

    def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or "HTTP_COOKIE" in environ:
            return django_app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        for route in routes:
            kwargs = route.kwargs_for(path)
            if kwargs is not None:
                return _serve(route, kwargs, environ, start_response)
        return django_app(environ, start_response)

    def _serve(
        route: Route, kwargs: dict[str, str], environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        request = WSGIRequest(environ)
        request.resolver_match = ResolverMatch(
            route.view, (), kwargs, url_name=route.url_name, route=route.route
        )
        try:
            response = handler(request)
        finally:
            if connection.connection is not None:  # the request used the database
                close_old_connections()
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        start_response(status, headers)
        return [response.content]  # type: ignore[attr-defined]  # never a streaming answer

    return application
