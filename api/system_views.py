"""The contract's system endpoints under /admin/, for staff only, plus the token check."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import system_serializers as shapes
from api.access import STAFF_AUTH, BearerTokenAuthentication, actor_of
from api.serializers import TokenCheckResponse, errors
from api.validation import validated
from api.views import body_object
from bandit import defaults
from system import config, services

STAFF_READ = errors(401, 403, 429, 503)


def system_config() -> dict[str, object]:
    """The contract's `system_config`: the system's settings and the defaults of new Tests."""
    return {**services.system_config(), **defaults.current().as_dict()}


STAFF_WRITE = errors(400, 401, 403, 413, 415, 429, 503)


class StaffView(APIView):
    authentication_classes = STAFF_AUTH["authentication_classes"]
    permission_classes = STAFF_AUTH["permission_classes"]


class GetProtectionView(StaffView):
    @extend_schema(tags=["System"], responses={200: shapes.Protection, **STAFF_READ})
    def get(self, request: Request) -> Response:
        return Response({"protected_api": config.current().protected_api})


class SetProtectionView(StaffView):
    @extend_schema(
        tags=["System"],
        request=shapes.Protection,
        responses={200: shapes.ProtectionChanged, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        body = validated(shapes.Protection, body_object(request))
        enabled = services.set_protection(actor_of(request), body["protected_api"])
        return Response({"message": "API protection status updated", "protected_api": enabled})


class GenerateTokenView(StaffView):
    @extend_schema(
        tags=["System"],
        summary="Make a new API token, replacing the previous one",
        request=None,
        responses={200: shapes.NewToken, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        return Response({"auth_token": services.generate_primary_token(actor_of(request))})


class RedisHealthView(StaffView):
    @extend_schema(tags=["System"], responses={200: shapes.RedisHealth, **STAFF_READ})
    def get(self, request: Request) -> Response:
        return Response(services.redis_health())


class TestDefaultsView(StaffView):
    @extend_schema(tags=["System"], responses={200: shapes.TestDefaults, **STAFF_READ})
    def get(self, request: Request) -> Response:
        config.current()
        return Response(defaults.current().as_dict())

    @extend_schema(
        tags=["System"],
        request=shapes.TestDefaultsChange,
        responses={200: shapes.TestDefaultsChanged, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        body = validated(shapes.TestDefaultsChange, body_object(request))
        updated = defaults.update(actor_of(request), body["test_settings"])
        return Response(
            {"message": "Test default config updated successfully", "config": updated.as_dict()}
        )


class SystemConfigView(StaffView):
    @extend_schema(tags=["System"], responses={200: shapes.SystemConfig, **STAFF_READ})
    def get(self, request: Request) -> Response:
        config.current()
        return Response(system_config())

    @extend_schema(
        tags=["System"],
        request=shapes.SystemConfigChange,
        responses={200: shapes.SystemConfigChanged, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        body = validated(shapes.SystemConfigChange, body_object(request))
        services.update_system_config(actor_of(request), **body)
        updated = system_config()
        return Response(
            {
                "message": (
                    "System config updated successfully. Restart may be required for some changes."
                ),
                "config": updated,
            }
        )


class RedisConfigView(StaffView):
    @extend_schema(
        tags=["System"],
        request=shapes.RedisConfigChange,
        responses={200: shapes.RedisConfigChanged, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        body = validated(shapes.RedisConfigChange, body_object(request))
        return Response(services.update_redis_config(actor_of(request), **body))


class TokenCheckView(APIView):
    """Lets a client verify its token before use: 200 with the token's name, else 401."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = []

    @extend_schema(
        tags=["Tests"],
        summary="Check an API token",
        responses={200: TokenCheckResponse, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        token = request.auth
        if not isinstance(token, config.TokenInfo):
            raise NotAuthenticated("Send Authorization: Bearer <token>.")
        return Response(
            {
                "valid": True,
                "name": token.name,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            }
        )
