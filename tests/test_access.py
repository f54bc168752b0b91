"""Letting callers in under a configuration that moved, in this process: an operator's change
made on another host holds from this worker's very next request, and a refused request
writes nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from api.views import FetchRecommendedVariantView, UpdateTestView
from bandit import defaults, selectors, services
from bandit.state import reads
from system import config
from system import services as system_services
from system.audit import Actor
from system.models import ApiToken, SystemConfig

pytestmark = pytest.mark.usefixtures("in_process")

OPERATOR = Actor("operator")
SETTINGS = defaults.TestSettings(60, 60, 0)


@pytest.fixture
def protected(django_capture_on_commit_callbacks) -> str:
    """Protection on, and a valid token; this worker's copy of the configuration knows both."""
    with django_capture_on_commit_callbacks(execute=True):
        system_services.set_protection(OPERATOR, True)
        token = system_services.generate_primary_token(OPERATOR)
    assert config.known().protected_api
    return token


def changed_on_another_host(**row_changes: object) -> None:
    """What another host's change looks like to this worker: the database and the published
    version move, while this worker's copy stays as it was."""
    SystemConfig.objects.filter(pk=1).update(version=SystemConfig.load().version + 1, **row_changes)
    config.publish_version(SystemConfig.load().version)


def fetch(test_id: str, token: str, request_id: str = "visit-1"):
    request = APIRequestFactory().post(
        "/api/fetch_recommended_variant",
        {"cb_model_id": test_id, "request_id": request_id},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return FetchRecommendedVariantView.as_view()(request)


def test_a_token_revoked_elsewhere_is_refused_at_once_and_nothing_is_stored(protected):
    test = services.create_test(
        name="Checkout", variants={0: "a", 1: "b"}, test_settings=SETTINGS, actor=OPERATOR
    )
    assert fetch(str(test.id), protected).status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    changed_on_another_host()
    refused = fetch(str(test.id), protected, "visit-2")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="scout"'
    assert reads.counters([str(test.id)])[str(test.id)].total_predictions == 1
    rewards = APIRequestFactory().post(
        f"/api/update_model/{test.id}",
        {"updates": [{"request_id": "visit-1", "reward": 1}]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {protected}",
    )
    assert UpdateTestView.as_view()(rewards, cb_model_id=str(test.id)).status_code == 401
    assert selectors.details(str(test.id))["total_updates"] == 0


def test_protection_turned_off_elsewhere_lets_a_refused_caller_in_at_once(protected):
    test = services.create_test(
        name="Checkout", variants={0: "a", 1: "b"}, test_settings=SETTINGS, actor=OPERATOR
    )
    assert fetch(str(test.id), "scout_not-a-token").status_code == 401
    changed_on_another_host(protected_api=False)
    assert fetch(str(test.id), "scout_not-a-token").status_code == 200
    assert not config.known().protected_api


def test_a_protected_api_refuses_a_caller_before_it_reads_the_body(protected):
    request = APIRequestFactory().post(
        "/api/fetch_recommended_variant", {"context": "not an object"}, format="json"
    )
    assert FetchRecommendedVariantView.as_view()(request).status_code == 401
    request = APIRequestFactory().post(
        "/api/update_model/x", {"updates": "not a list"}, format="json"
    )
    assert UpdateTestView.as_view()(request, cb_model_id="x").status_code == 401
    with_token = APIRequestFactory().post(
        "/api/fetch_recommended_variant",
        {"context": "not an object"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {protected}",
    )
    assert FetchRecommendedVariantView.as_view()(with_token).status_code == 400
