"""How Scout's authentication appears in the OpenAPI schema (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.access.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer"
        )


class StaffBasicScheme(OpenApiAuthenticationExtension):
    target_class = "api.access.StaffBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return {"type": "http", "scheme": "basic", "description": "A staff user."}
