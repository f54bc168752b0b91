"""The refusals a use case can answer with. The API turns each into `{"detail": ...}` with the
status code it carries (api.errors); the console shows its detail as a message."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A use case refused a request; views turn it into a JSON error with `status_code`."""

    status_code = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(ServiceError):
    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    """The request contradicts itself or what exists (two variants with one label)."""

    status_code = 409


class Unavailable(ServiceError):
    status_code = 503
