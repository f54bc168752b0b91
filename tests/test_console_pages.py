"""The console's pages over plain HTTP, with a logged-in session: they answer, refer to nothing
outside Scout, send a strict Content-Security-Policy, keep bad input on the form, and keep their
charts bounded. These run without a browser, so they hold on any machine (the browser tests,
in test_console.py, check that the pages work under that policy)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import details, fetch, reward
from tests.live import ADMIN, ScoutServer

PAGES = [
    "/admin/",
    "/admin/bandit/test/",
    "/admin/bandit/test/add/",
    "/admin/adminapi/systemconfig/",
    "/admin/adminapi/apitoken/",
    "/admin/adminapi/apitoken/add/",
    "/admin/adminapi/auditentry/",
    "/admin/scout_webhooks/webhook/",
    "/admin/logs/",
    "/admin/auth/user/",
]
# The API's docs pages, which Scout serves from the installed packages.
DOCS = ["/api/docs/", "/api/redoc/"]
# Any absolute URL in an attribute that loads something (scripts, styles, images, fonts).
LOADED_URL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)
# A <script> element without src: the page's own code, or data (type="application/json").
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)([^>]*)>", re.IGNORECASE)


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


@pytest.mark.parametrize("path", PAGES + DOCS)
def test_pages_answer_and_load_only_local_assets(browser_session, path):
    response = browser_session.get(path)
    assert response.status_code == 200, response.text[:500]
    assert not LOADED_URL.search(response.text), LOADED_URL.search(response.text)
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)""", response.text):
        assert browser_session.get(asset).status_code == 200, asset


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy, directive by directive."""
    header = response.headers.get("content-security-policy", "")
    assert header, f"no Content-Security-Policy on {response.url}"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_strict(response: httpx.Response) -> dict[str, list[str]]:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'self'" in directives["script-src"]
    assert "'unsafe-inline'" not in directives["script-src"]
    # Every source is Scout itself, a keyword, a nonce, or data:/blob: made by the page: no
    # other host, no scheme that opens the web.
    for name, sources in directives.items():
        for source in sources:
            assert source.startswith("'") or source in ("data:", "blob:"), (name, source)
    # The page's own inline scripts carry the response's nonce (the others are JSON data).
    nonces = [s for s in directives["script-src"] if s.startswith("'nonce-")]
    for attributes in INLINE_SCRIPT.findall(response.text):
        if 'type="application/json"' in attributes:
            continue
        nonce = re.search(r'\bnonce="([^"]+)"', attributes)
        assert nonce and f"'nonce-{nonce.group(1)}'" in nonces, (response.url, attributes)
    return directives


def test_pages_send_a_strict_content_security_policy(server, browser_session, make_test, api):
    with server.client(follow_redirects=False) as anonymous:
        login = anonymous.get("/admin/login/")
    assert login.status_code == 200
    assert_strict(login)

    test_id = make_test(f"Policy {uuid.uuid4().hex[:6]}")["cb_model_id"]
    dashboard = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert dashboard.status_code == 200 and 'id="scout-series"' in dashboard.text
    assert_strict(dashboard)

    # The Swagger page's start-up script is inline: it runs by the nonce of its response, a
    # new one on each response.
    docs = browser_session.get("/api/docs/")
    assert docs.status_code == 200
    nonces = [s for s in assert_strict(docs)["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1 and f'<script nonce="{nonces[0][7:-1]}">' in docs.text
    again = [s for s in policy(browser_session.get("/api/docs/"))["script-src"] if "nonce" in s]
    assert again and again != nonces

    # The JSON API that products call goes without: a JSON body runs nothing in a browser,
    # and the header would cost every decision. The docs pages under /api/ keep it.
    assert "content-security-policy" not in api.get("/api/models").headers


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


def test_the_dashboard_shows_the_evidence_in_use_beside_all_rewards(
    browser_session, make_test, api
):
    """A variant whose rewards changed learns from its recent ones alone; the dashboard says
    how many of its rewards that is worth, and the table keeps counting every reward."""
    test_id = make_test(f"Changed {uuid.uuid4().hex[:6]}")["cb_model_id"]
    for value in (1, 0):
        updates = [{"variant_id": 0, "reward": value} for _ in range(150)]
        assert reward(api, test_id, *updates)["processed_updates"] == 150
    time.sleep(1.2)  # older than a snapshot lives unchecked: whichever worker answers looks
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert page.status_code == 200
    assert "Thompson sampling (focused, pooled prior, forgets on a change)" in page.text
    summary = details(api, test_id)["performance_summary"]["0"]
    assert summary["changes_detected"] == 1 and summary["updates"] == 300
    in_use = re.search(r'data-field="evidence">(\d+) in use since 1 change<', page.text)
    assert in_use and int(in_use.group(1)) == round(summary["evidence"]) < 300, in_use


def test_the_dashboard_names_the_model_a_test_learns_with(browser_session, make_test, api):
    """A contextual Test learns a regression: neither the prior of a rate nor forgetting
    applies to it, and its dashboard does not claim them."""
    test_id = make_test(f"Contextual {uuid.uuid4().hex[:6]}", minimum_update_requests=0)[
        "cb_model_id"
    ]
    decision = fetch(api, test_id, request_id="visit-1", context={"device": "mobile"})
    reward(api, test_id, {"request_id": decision["request_id"], "reward": 1})
    time.sleep(1.2)  # whichever worker answers builds its snapshot again
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert page.status_code == 200
    assert "Thompson sampling (focused, a regression on the context)" in page.text
    state = page.text.split('data-field="state"')[1].split('data-field="total_predictions"')[0]
    assert "a regression on the context" in state and "prior" not in state


def test_the_reward_window_form_checks_its_input_and_needs_a_post(browser_session, make_test, api):
    test_id = make_test(f"Window {uuid.uuid4().hex[:6]}")["cb_model_id"]
    url = f"/admin/bandit/test/{test_id}/reward_window/"
    form = browser_session.get(url)
    assert form.status_code == 200 and 'name="reward_window_seconds"' in form.text
    assert browser_session.post(url, data={"reward_window_seconds": "60"}).status_code == 403
    for seconds, default, says in [
        ("0", "0", "between 1 and 2592000"),
        ("2592001", "0", "between 1 and 2592000"),
        ("soon", "0", "Enter a whole number"),
        ("60", "lots", "Enter a number"),
        ("60", "1e13", "magnitude at most"),
    ]:
        refused = browser_session.post(
            url,
            data={
                "csrfmiddlewaretoken": csrf(browser_session),
                "reward_window_seconds": seconds,
                "default_reward": default,
            },
        )
        assert refused.status_code == 200 and says in refused.text, (seconds, default)
        assert details(api, test_id)["reward_window_seconds"] is None
    saved = browser_session.post(
        url,
        data={
            "csrfmiddlewaretoken": csrf(browser_session),
            "reward_window_seconds": "60",
            "default_reward": "-1",
        },
    )
    assert saved.status_code == 302
    info = details(api, test_id)
    assert info["reward_window_seconds"] == 60 and info["default_reward"] == -1.0
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert 'data-field="reward_window">60 s<' in page.text
    unknown = browser_session.get(f"/admin/bandit/test/{uuid.uuid4()}/reward_window/")
    assert unknown.status_code == 404


def test_retiring_needs_the_confirmation_post_and_keeps_two_in_service(
    browser_session, make_test, api
):
    test_id = make_test(f"Retire {uuid.uuid4().hex[:6]}", variants={"0": "A", "1": "B"})[
        "cb_model_id"
    ]
    confirm = browser_session.get(f"/admin/bandit/test/{test_id}/retire/1/")
    assert confirm.status_code == 200 and "Retire “B”?" in confirm.text
    assert browser_session.post(f"/admin/bandit/test/{test_id}/retire/1/").status_code == 403
    refused = browser_session.post(
        f"/admin/bandit/test/{test_id}/retire/1/",
        data={"csrfmiddlewaretoken": csrf(browser_session)},
        follow_redirects=True,
    )
    assert "at least 2 variants in service" in refused.text
    assert details(api, test_id)["retired_variants"] == []
    added = browser_session.post(
        f"/admin/bandit/test/{test_id}/add_variants/",
        data={"csrfmiddlewaretoken": csrf(browser_session), "variant_labels": "C"},
    )
    assert added.status_code == 302
    assert details(api, test_id)["variants"] == {"0": "A", "1": "B", "2": "C"}
    done = browser_session.post(
        f"/admin/bandit/test/{test_id}/retire/1/",
        data={"csrfmiddlewaretoken": csrf(browser_session)},
    )
    assert done.status_code == 302
    assert details(api, test_id)["retired_variants"] == [1]
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    row = page.text.split('data-variant="1"')[1].split("</tr>")[0]
    assert 'data-field="retired"' in row and 'data-action="rollout"' not in row
    empty = browser_session.post(
        f"/admin/bandit/test/{test_id}/add_variants/",
        data={"csrfmiddlewaretoken": csrf(browser_session), "variant_labels": "  \n"},
    )
    assert empty.status_code == 200 and "This field is required" in empty.text


def test_the_holdout_form_checks_its_input_and_holds_from_the_next_decision(
    browser_session, make_test, api
):
    test_id = make_test(f"Holdout {uuid.uuid4().hex[:6]}", minimum_update_requests=1_000_000)[
        "cb_model_id"
    ]
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert 'data-field="holdout">off' in page.text and "No holdout" in page.text
    url = f"/admin/bandit/test/{test_id}/holdout/"
    form = browser_session.get(url)
    assert form.status_code == 200 and 'name="holdout_share"' in form.text
    assert browser_session.post(url, data={"holdout_share": "0.2"}).status_code == 403
    for share, says in [("0.6", "between 0 and 0.5"), ("-1", "between 0 and 0.5"), ("x", "number")]:
        refused = browser_session.post(
            url, data={"csrfmiddlewaretoken": csrf(browser_session), "holdout_share": share}
        )
        assert refused.status_code == 200 and says in refused.text, share
        assert details(api, test_id)["holdout_share"] == 0.0
    saved = browser_session.post(
        url, data={"csrfmiddlewaretoken": csrf(browser_session), "holdout_share": "0.5"}
    )
    assert saved.status_code == 302
    assert details(api, test_id)["holdout_share"] == 0.5
    assert any(fetch(api, test_id)["holdout"] for _ in range(60))
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert 'data-field="holdout">50%' in page.text


def test_the_dashboard_says_whether_the_bandit_beats_the_holdout(browser_session, make_test, api):
    """Variant 0 always earns 1 and the other 0: the bandit soon beats the plain split."""
    test_id = make_test(
        f"Lift {uuid.uuid4().hex[:6]}",
        variants={"0": "A", "1": "B", "2": "C"},
        minimum_update_requests=10,
        holdout_share=0.3,
    )["cb_model_id"]
    for i in range(200):
        answer = fetch(api, test_id, request_id=f"v{i}")
        reward(api, test_id, {"request_id": f"v{i}", "reward": float(answer["variant_id"] == 0)})
    wait_for_logged_rewards(api, test_id, 200)
    page = browser_session.get(f"/admin/bandit/test/{test_id}/live/")
    assert page.status_code == 200
    assert "bandit ahead" in page.text
    assert "The bandit earns" in page.text and "more per decision than a plain split" in page.text
    download = browser_session.get(f"/admin/bandit/test/{test_id}/decision_log.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    lines = download.text.splitlines()
    assert lines[0].startswith("decided_at,request_id,variant_id") and len(lines) == 201
    assert session_less_download_is_refused(browser_session, test_id)


def session_less_download_is_refused(browser_session: httpx.Client, test_id: str) -> bool:
    """The download is a console page: without a staff login it sends to the login page."""
    with httpx.Client(base_url=str(browser_session.base_url), follow_redirects=False) as client:
        response = client.get(f"/admin/bandit/test/{test_id}/decision_log.csv")
    return response.status_code == 302 and "/admin/login/" in response.headers["location"]


def test_the_dashboard_shows_what_other_policies_would_have_earned(browser_session, make_test, api):
    test_id = make_test(
        f"Policies {uuid.uuid4().hex[:6]}",
        variants={"0": "A", "1": "B"},
        minimum_update_requests=1_000_000,
    )["cb_model_id"]
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert (
        "What other policies would have earned" in page.text
        and "from the 0 rewarded" in page.text.lower()
    )
    for i in range(40):
        answer = fetch(api, test_id, request_id=f"p{i}")
        reward(api, test_id, {"request_id": f"p{i}", "reward": float(answer["variant_id"] == 1)})
    wait_for_logged_rewards(api, test_id, 40)
    page = browser_session.get(f"/admin/bandit/test/{test_id}/change/")
    assert "Estimated from the 40 rewarded decisions" in page.text
    assert "Variant B for everyone." in page.text and "A plain split" in page.text


def wait_for_logged_rewards(api: httpx.Client, test_id: str, rewards: int) -> None:
    """Until the decision log holds `rewards` rewards of the Test (it is moved about once a
    second), for at most 30 s."""
    deadline = time.monotonic() + 30
    while details(api, test_id)["evaluation"]["logged_rewards"] < rewards:
        assert time.monotonic() < deadline, "the decision log did not fill"
        time.sleep(0.3)


def schedule_form(browser_session: httpx.Client, name: str, **fields: str) -> dict[str, str]:
    return {
        "csrfmiddlewaretoken": csrf(browser_session),
        "name": name,
        "variant_labels": "Control\nBold",
        "trail_time_window_minutes": "60",
        "trail_bucket_granularity_seconds": "60",
        "minimum_update_requests": "10",
        "sampling": "focused",
        "prior": "pooled",
        "forgetting": "on_change",
        "minimum_variant_share": "0",
        "holdout_share": "0",
        "sticky_seconds": "86400",
        "default_reward": "0",
        "on_end": "keep",
        "_save": "Save",
        **fields,
    }


def test_a_test_is_scheduled_from_the_console_and_its_dashboard_says_so(browser_session, api):
    name = f"Weekend {uuid.uuid4().hex[:6]}"
    form = schedule_form(
        browser_session,
        name,
        starts_at="2099-03-05T00:00",
        ends_at="2099-03-08T23:59",
        on_end="variant",
        on_end_variant="Bold",
    )
    response = browser_session.post("/admin/bandit/test/add/", data=form)
    assert response.status_code == 302, response.text
    [created] = [t for t in api.get("/api/models").json() if t["name"] == name]
    info = details(api, created["cb_model_id"])
    assert info["starts_at"] == "2099-03-05T00:00:00.000Z"
    assert info["ends_at"] == "2099-03-08T23:59:00.000Z"
    assert info["on_end"] == 1 and info["schedule"] == "scheduled"
    page = browser_session.get(f"/admin/bandit/test/{created['cb_model_id']}/live/")
    assert "Scheduled: starts 2099-03-05 00:00:00 UTC" in page.text
    assert "every visitor gets Control" in page.text
    assert "Ends 2099-03-08 23:59:00 UTC, then everyone gets Bold" in page.text
    listed = browser_session.get("/admin/bandit/test/?state=scheduled")
    assert name in listed.text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"starts_at": "2099-03-05T00:00", "ends_at": "2099-03-04T00:00"}, "must be after"),
        ({"starts_at": "soon"}, "ISO 8601"),
        ({"ends_at": "2099-03-04T00:00", "on_end": "variant"}, "Name the variant"),
        ({"ends_at": "2099-03-04T00:00", "on_end": "variant", "on_end_variant": "Z"}, "not a"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_on_the_form(browser_session, api, fields, says):
    before = api.get("/api/models").json()
    form = schedule_form(browser_session, "Refused schedule", **fields)
    response = browser_session.post("/admin/bandit/test/add/", data=form, follow_redirects=True)
    assert says in response.text
    assert api.get("/api/models").json() == before
