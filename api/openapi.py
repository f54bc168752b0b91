"""Touches on the generated OpenAPI schema."""

from typing import Any


def contract_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """Show each path as the contract writes it, without the optional trailing slash."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result


def bodies_required(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """Mark a request body required where its schema asks for at least one property: an
    absent body is refused like an empty object (drf-spectacular marks a body required only
    when one of its fields is)."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                reference = media.get("schema", {}).get("$ref", "")
                schema = components.get(reference.rsplit("/", 1)[-1], {})
                if schema.get("minProperties") or schema.get("required"):
                    body["required"] = True
    return result
