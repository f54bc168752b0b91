"""The console's Live logs page. It only renders the viewer; the browser follows the shared
log stream (`/logs/stream`, server-sent events) itself, so every worker's and host's lines
arrive through one connection."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from bandit.models import Test

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
STREAM_PATH = "/logs/stream"


def live_logs(request: HttpRequest) -> TemplateResponse:
    tests = Test.objects.order_by("name").values_list("id", "name")
    context = {
        **admin.site.each_context(request),
        "title": "Live logs",
        "levels": LEVELS,
        "level": request.GET.get("level", "INFO") if request.GET.get("level") in LEVELS else "INFO",
        "tests": [(str(test_id), name) for test_id, name in tests],
        "test_id": request.GET.get("test_id", ""),
        "stream_url": STREAM_PATH,
    }
    return TemplateResponse(request, "admin/scout/live_logs.html", context)
