"""The console's pages over plain HTTP, with a logged-in session: they answer, refer to nothing
outside Scout, keep bad input on the form, and keep their charts bounded. These run without a
browser, so they hold on any machine (the browser tests are in test_console.py)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.live import ADMIN, ScoutServer

PAGES = [
    "/admin/",
    "/admin/bandit/test/",
    "/admin/bandit/test/add/",
    "/admin/adminapi/systemconfig/",
    "/admin/adminapi/apitoken/",
    "/admin/adminapi/apitoken/add/",
    "/admin/adminapi/auditentry/",
    "/admin/logs/",
    "/admin/auth/user/",
]
# Any absolute URL in an attribute that loads something (scripts, styles, images, fonts).
LOADED_URL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def session(server: ScoutServer) -> httpx.Client:
    client = server.client(follow_redirects=False)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": ADMIN.username,
            "password": ADMIN.password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def browser_session(server: ScoutServer) -> Iterator[httpx.Client]:
    client = session(server)
    yield client
    client.close()


def csrf(client: httpx.Client) -> str:
    return client.cookies["csrftoken"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_and_load_only_local_assets(browser_session, path):
    response = browser_session.get(path)
    assert response.status_code == 200, response.text[:500]
    assert not LOADED_URL.search(response.text), LOADED_URL.search(response.text)
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)""", response.text):
        assert browser_session.get(asset).status_code == 200, asset


def test_the_console_needs_a_staff_login(server: ScoutServer):
    with server.client(follow_redirects=False) as anonymous:
        for path in ("/admin/bandit/test/", "/admin/logs/", "/admin/adminapi/systemconfig/"):
            response = anonymous.get(path)
            assert response.status_code == 302
            assert response.headers["location"].startswith("/admin/login/")


def test_the_create_form_keeps_bad_input_with_a_message(browser_session, make_test):
    page = browser_session.get("/admin/bandit/test/add/")
    assert page.status_code == 200
    before = browser_session.get("/api/models").json()
    form = {
        "csrfmiddlewaretoken": csrf(browser_session),
        "name": "Bad form",
        "variant_labels": "Same\nSame",
        "trail_time_window_minutes": "not a number",
        "trail_bucket_granularity_seconds": "60",
        "minimum_update_requests": "10",
        "_save": "Save",
    }
    response = browser_session.post("/admin/bandit/test/add/", data=form)
    assert response.status_code == 200
    assert "labels must be unique" in response.text
    assert "Enter a whole number" in response.text
    assert browser_session.get("/api/models").json() == before


def test_a_long_trail_window_keeps_the_charts_bounded(browser_session, make_test):
    created = make_test(
        f"Week {uuid.uuid4().hex[:6]}",
        trail_time_window_minutes=10_080,
        trail_bucket_granularity_seconds=61,
    )
    response = browser_session.get(f"/admin/bandit/test/{created['cb_model_id']}/live/")
    assert response.status_code == 200
    payload = re.search(
        r'<script id="scout-series" type="application/json">(.*?)</script>', response.text, re.S
    )
    assert payload is not None
    series = json.loads(payload.group(1))
    assert 300 <= len(series["timestamps"]) <= 360
    assert series["bucket_seconds"] % 61 == 0 and series["merged_buckets"] > 1
    assert all(len(s["data"]) == len(series["timestamps"]) for s in series["traffic"])


def test_an_unknown_test_is_a_404(browser_session):
    unknown = uuid.uuid4()
    assert browser_session.get(f"/admin/bandit/test/{unknown}/change/").status_code in (302, 404)
    assert browser_session.get(f"/admin/bandit/test/{unknown}/live/").status_code == 404
    rollout = browser_session.post(
        f"/admin/bandit/test/{unknown}/rollout/0/",
        data={"csrfmiddlewaretoken": csrf(browser_session)},
    )
    assert rollout.status_code == 404


def test_a_rollout_needs_the_confirmation_post(browser_session, make_test, api):
    test_id = make_test(f"Confirm {uuid.uuid4().hex[:6]}")["cb_model_id"]
    confirm = browser_session.get(f"/admin/bandit/test/{test_id}/rollout/1/")
    assert confirm.status_code == 200 and "to everyone?" in confirm.text
    assert api.get(f"/api/model_details/{test_id}").json()["global_variant_rollout"] is None
    missing = browser_session.get(f"/admin/bandit/test/{test_id}/rollout/7/")
    assert missing.status_code == 302  # back to the dashboard, with a message
    without_csrf = browser_session.post(f"/admin/bandit/test/{test_id}/rollout/1/")
    assert without_csrf.status_code == 403
    done = browser_session.post(
        f"/admin/bandit/test/{test_id}/rollout/1/",
        data={"csrfmiddlewaretoken": csrf(browser_session)},
    )
    assert done.status_code == 302
    assert api.get(f"/api/model_details/{test_id}").json()["global_variant_rollout"] == 1
    browser_session.post(
        f"/admin/bandit/test/{test_id}/clear_rollout/",
        data={"csrfmiddlewaretoken": csrf(browser_session)},
    )
    assert api.get(f"/api/model_details/{test_id}").json()["global_variant_rollout"] is None
