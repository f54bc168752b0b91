"""Touches on the generated OpenAPI schema."""

from typing import Any


def contract_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """Show each path as the contract writes it, without the optional trailing slash."""
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result["paths"].items()
    }
    return result
