"""How Scout's authentication and whole-body rules appear in the OpenAPI schema
(drf-spectacular extensions)."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
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


class WholeBodyRulesSchema(OpenApiSerializerExtension):
    """Publishes a serializer's rules across fields (api.validation.WholeBodyRules) beside
    the fields drf-spectacular maps itself, for the request direction, where they apply."""

    target_class = "api.validation.WholeBodyRules"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):  # noqa: ANN001, ANN201
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema.update(self.target.schema_rules())
        return schema


class PatternSchema(OpenApiSerializerFieldExtension):
    """A string field that refuses some strings drf-spectacular cannot see (a blank Text, a
    NUL character) names what it accepts in its `schema_pattern`; the schema publishes it
    beside the lengths drf-spectacular maps itself."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    @classmethod
    def _matches(cls, target) -> bool:  # noqa: ANN001
        return super()._matches(target) and bool(getattr(target, "schema_pattern", None))

    def map_serializer_field(self, auto_schema, direction):  # noqa: ANN001, ANN201
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # drf-spectacular adds "null" for a nullable field after the extension: not twice.
        if isinstance(schema.get("type"), list):
            kinds = [kind for kind in schema["type"] if kind != "null"]
            schema["type"] = kinds[0] if len(kinds) == 1 else kinds
        if "pattern" not in schema and "anyOf" not in schema:
            schema["pattern"] = self.target.schema_pattern
        return schema
