"""Settings of the baseline app: Django + DRF with nothing Scout-specific.

Redis is reached the way Scout reaches it (redis-py with hiredis, a connection pool, a Unix
socket to a Redis server configured like Scout's embedded one); BENCH_REDIS_SOCKET names it.
"""

from __future__ import annotations

import os

SECRET_KEY = "baseline-only-not-secret"  # noqa: S105 - a throwaway app on loopback
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.baseline.urls"
DATABASES: dict[str, dict] = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
BENCH_REDIS_SOCKET = os.environ.get("BENCH_REDIS_SOCKET", "")
