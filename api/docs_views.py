"""The API's own documentation (the OpenAPI schema, Swagger UI, Redoc), let in like the rest of
`/api/`: open while protection is off; with protection on, a valid token or a staff session.

A browser with a console session reads the docs pages and the schema they load; scripts send
their token. Refusals are JSON like every other error of the API, not an HTML page.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import access
from system import config


class _LetInLikeTheApi(APIView):
    """Put before a drf-spectacular view: the access rule of `/api/` (api.access.admit)."""

    authentication_classes = [access.BearerTokenAuthentication, SessionAuthentication]
    permission_classes = []

    def perform_authentication(self, request: Request) -> None:
        """Who the caller is, is asked only when protection is on (see `initial`)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        access.admit(request, config.current())

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scout"'

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response


class SchemaView(_LetInLikeTheApi, SpectacularAPIView):
    pass


class SwaggerView(_LetInLikeTheApi, SpectacularSwaggerView):
    pass


class RedocView(_LetInLikeTheApi, SpectacularRedocView):
    pass
