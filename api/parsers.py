"""The JSON body parser: strict JSON, with bodies nested too deeply refused as bad input."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """DRF's parser refuses NaN and Infinity tokens (STRICT_JSON); this one also turns a body
    nested deeper than Python's recursion limit into a 400 instead of a crash."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
