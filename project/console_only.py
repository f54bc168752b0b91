"""Middleware that only the console needs, skipped for the API that products call.

A product backend asks for a decision in its own request path, without cookies. Sessions, flash
messages, static files and login throttling mean nothing to it, yet they cost a tenth of a
decision's CPU time. django-prometheus' request metrics (about ten multiprocess metric writes a
request) count console pages only: the API's requests are counted once, by Scout's own
`http_requests_total` and `http_request_duration_seconds` (project.middleware).

Each class here is one of Django's middleware that runs for console pages
only, and for an API call only where it still means something (a staff session's cookie, which
the API accepts while protection is on). The CSRF and framing middleware stay as they are: they
cost little, and Django's deploy checks look for them.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from axes.middleware import AxesMiddleware
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware

# What products call, and what load balancers and Prometheus poll.
API_PREFIXES = ("/api/", "/metrics", "/healthz", "/readyz")
# The pages under /api/ that a browser shows.
DOCS_PREFIXES = ("/api/docs", "/api/redoc")

# The per-view hooks Django looks up on a middleware instance (BaseHandler.load_middleware).
_HOOKS = ("process_view", "process_exception", "process_template_response")

# What Django hands a middleware: the next handler, which answers a response, or an awaitable
# one when the chain runs async (as MiddlewareMixin declares it).
GetResponse: TypeAlias = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIXES)


def has_session_cookie(request: HttpRequest) -> bool:
    return "HTTP_COOKIE" in request.META and settings.SESSION_COOKIE_NAME in request.COOKIES


class ConsoleOnly:
    """Put before a middleware class in the bases: it then runs for console requests only.

    Subclassing (rather than wrapping) keeps the checks of the admin and django-axes, which look
    for their middleware in MIDDLEWARE, satisfied.
    """

    get_response: GetResponse

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]
        for hook in _HOOKS:
            method = getattr(self, hook, None)
            if method is not None:  # shadow the class's hook on this instance
                setattr(self, hook, self._when_applies(hook, method))

    def applies(self, request: HttpRequest) -> bool:
        return not is_api(request)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.applies(request):
            return super().__call__(request)  # type: ignore[misc]
        return self.get_response(request)

    def _when_applies(self, hook: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def run(middleware: ConsoleOnly, request: HttpRequest, *args: Any) -> Any:
            if middleware.applies(request):
                return method(request, *args)
            # A skipped template-response hook hands the response on; the others decline.
            return args[0] if hook == "process_template_response" else None

        # Bound, as Django expects a hook to be: it names the hook's class in its errors.
        return types.MethodType(run, self)


class ConsoleOrSessionOnly(ConsoleOnly):
    """Also runs for an API call that carries a session cookie (a logged-in staff user)."""

    def applies(self, request: HttpRequest) -> bool:
        return not is_api(request) or has_session_cookie(request)


class ContentSecurityPolicy(ConsoleOnly, CSPMiddleware):
    """The console's pages, and the API docs pages under /api/, send the policy; the JSON API
    does not (a JSON body runs nothing in a browser, and the header costs every decision)."""

    def applies(self, request: HttpRequest) -> bool:
        return not is_api(request) or request.path_info.startswith(DOCS_PREFIXES)


class Static(ConsoleOnly, WhiteNoiseMiddleware):
    pass


class Sessions(ConsoleOrSessionOnly, SessionMiddleware):
    pass


class Common(ConsoleOnly, CommonMiddleware):
    pass


class Authentication(ConsoleOrSessionOnly, AuthenticationMiddleware):
    pass


class Messages(ConsoleOnly, MessageMiddleware):
    pass


class LoginThrottling(ConsoleOnly, AxesMiddleware):
    pass


class PrometheusBefore(ConsoleOnly, PrometheusBeforeMiddleware):
    pass


class PrometheusAfter(ConsoleOnly, PrometheusAfterMiddleware):
    pass
