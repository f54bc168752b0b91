"""Routes of the operator endpoints (each with and without a trailing slash)."""

from django.urls import re_path

from api import observability_views as views

urlpatterns = [
    re_path(r"^metrics/?$", views.metrics, name="metrics"),
    re_path(r"^logs/stream/?$", views.LogStreamView.as_view(), name="logs_stream"),
    re_path(r"^healthz/?$", views.healthz, name="healthz"),
    re_path(r"^readyz/?$", views.readyz, name="readyz"),
]
