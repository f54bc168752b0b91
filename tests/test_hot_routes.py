"""The WSGI front of the hot routes (project.hot_routes), in process: which requests it takes,
and that what it answers carries what Django's handler would have added."""

from __future__ import annotations

import io
import json

import pytest

from project.hot_routes import HOT_ROUTES, Route, serving_hot_routes


@pytest.fixture(scope="module")
def routes() -> dict[str, Route]:
    return {name: Route(name, takes_id) for name, takes_id in HOT_ROUTES.items()}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/fetch_recommended_variant", {}),
        ("/api/fetch_recommended_variant/", {}),
        ("/api/fetch_recommended_variant//", None),
        ("/api/fetch_recommended_variantx", None),
        ("/api/models", None),
    ],
)
def test_the_decision_route(routes, path, expected):
    assert routes["fetch_recommended_variant"].kwargs_for(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/update_model/abc", {"cb_model_id": "abc"}),
        ("/api/update_model/abc/", {"cb_model_id": "abc"}),
        ("/api/update_model/", None),
        ("/api/update_model//", None),
        ("/api/update_model/a/b", None),
        ("/api/update_modelx/abc", None),
    ],
)
def test_the_reward_route(routes, path, expected):
    assert routes["update_model"].kwargs_for(path) == expected


def call(app, method: str, path: str, body: bytes = b"", **environ: str):
    seen: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **environ,
    }
    content = b"".join(app(base, start_response))
    return seen["status"], seen["headers"], content


def test_only_the_hot_routes_skip_django_and_their_answers_keep_its_headers(db, settings):
    """Other requests reach Django's handler; a hot route's answer carries the middleware's
    headers, and an oversized body is refused as Django's guard refuses it."""
    reached = []

    def django_app(environ, start_response):
        reached.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return [b""]

    app = serving_hot_routes(django_app)
    call(app, "GET", "/api/models")
    call(app, "GET", "/api/fetch_recommended_variant")
    call(app, "POST", "/api/fetch_recommended_variant", b"{}", HTTP_COOKIE="sessionid=x")
    call(app, "POST", "/api/create_model", b"{}")
    assert reached == [
        "/api/models",
        "/api/fetch_recommended_variant",
        "/api/fetch_recommended_variant",
        "/api/create_model",
    ]
    status, headers, content = call(app, "POST", "/api/fetch_recommended_variant", b"{}")
    assert reached[-1] == "/api/create_model"  # served by the front
    assert status.startswith("400")
    assert json.loads(content) == {
        "detail": "cb_model_id is required.",
        "errors": {"cb_model_id": ["cb_model_id is required."]},
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    settings.SCOUT_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    status, _, content = call(app, "POST", "/api/update_model/x", b'{"updates": []}')
    assert status.startswith("413")
    assert json.loads(content)["limit_bytes"] == 10
