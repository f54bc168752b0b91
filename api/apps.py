from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        # drf-spectacular finds its extensions by import: register how Scout's
        # authentication classes appear in the OpenAPI schema.
        from api import schema  # noqa: F401
