"""Content negotiation for an API that answers JSON only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JsonOnly(DefaultContentNegotiation):
    """Answer JSON whatever the Accept header says, without parsing it on every request: the
    API has one renderer, and a client asking for something else is better served an answer it
    can read than a 406. Request bodies are still checked against their Content-Type."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))  # DRF passes the view's renderers as a list
        return renderer, renderer.media_type
