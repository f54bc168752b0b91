"""The Test lifecycle over HTTP: create, list, details, delete, and every bad input."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

DETAIL_FIELDS = {
    "cb_model_id",
    "name",
    "variants",
    "created_at",
    "last_prediction_at",
    "last_update_at",
    "is_active",
    "global_variant_rollout",
    "total_predictions",
    "total_updates",
    "minimum_update_requests_for_stats",
    "sampling",
    "prior",
    "forgetting",
    "last_change_at",
    "performance_summary",
    "prediction_trail",
    "update_trail",
    "context_feature_analysis",
    "exploitation_exploration_ratio",
}
SUMMARY_FIELDS = {
    "cb_model_id",
    "name",
    "num_variants",
    "total_predictions",
    "total_updates",
    "created_at",
    "last_prediction_at",
    "last_update_at",
    "is_active",
    "global_variant_rollout",
}


def parse_utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text)


def test_create_answers_the_contract_fields(api):
    response = api.post(
        "/api/create_model",
        json={"name": "Hero image", "variants": {"0": "Cat", "1": "Dog", "2": 3}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Test created successfully"
    assert str(uuid.UUID(body["cb_model_id"])) == body["cb_model_id"]
    assert body["model_id"] == body["cb_model_id"]
    assert body["name"] == "Hero image"
    assert body["variants"] == {"0": "Cat", "1": "Dog", "2": 3}


def test_list_shows_every_summary_field_with_real_values(api, make_test):
    created = make_test("Listed test")
    before = dt.datetime.now(dt.UTC)
    listing = api.get("/api/models")
    assert listing.status_code == 200
    entry = next(item for item in listing.json() if item["cb_model_id"] == created["cb_model_id"])
    assert set(entry) == SUMMARY_FIELDS
    assert entry["name"] == "Listed test"
    assert entry["num_variants"] == 2
    assert entry["total_predictions"] == 0 and entry["total_updates"] == 0
    assert abs(parse_utc(entry["created_at"]) - before) < dt.timedelta(seconds=30)
    assert entry["last_prediction_at"] is None and entry["last_update_at"] is None
    assert entry["is_active"] is True
    assert entry["global_variant_rollout"] is None


def test_details_of_a_new_test_have_every_field_in_its_empty_form(api, make_test):
    created = make_test(variants={"0": "A", "5": "B"})
    response = api.get(f"/api/model_details/{created['cb_model_id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= DETAIL_FIELDS
    assert body["variants"] == {"0": "A", "5": "B"}
    assert body["minimum_update_requests_for_stats"] == 50
    assert body["sampling"] == "focused"
    assert body["prior"] == "pooled"
    assert body["forgetting"] == "on_change" and body["last_change_at"] is None
    assert body["reward_window_seconds"] is None and body["default_reward"] == 0.0
    assert body["decisions_awaiting_reward"] == 0
    assert body["retired_variants"] == [] and body["minimum_variant_share"] == 0.0
    assert body["prediction_trail"] == [] and body["update_trail"] == []
    assert body["context_feature_analysis"] == {}
    assert set(body["performance_summary"]) == {"0", "5"}
    assert body["performance_summary"]["5"] == {
        "predictions": 0,
        "updates": 0,
        "reward_sum": 0.0,
        "average_reward": 0.0,  # a number, as the contract's clients parse it
        "current_prediction_ratio": 0.0,
        "evidence": 0.0,
        "changes_detected": 0,
        "default_rewards": 0,
        "retired": False,
    }


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_path_works_with_and_without_trailing_slash(api, slash):
    created = api.post(
        f"/api/create_model{slash}", json={"name": "Slash", "variants": {"0": "a", "1": "b"}}
    )
    assert created.status_code == 200
    test_id = created.json()["cb_model_id"]
    assert api.get(f"/api/models{slash}").status_code == 200
    assert api.get(f"/api/model_details/{test_id}{slash}").status_code == 200
    deleted = api.post(f"/api/delete_model/{test_id}{slash}")
    assert deleted.status_code == 200


def test_delete_removes_the_definition_and_all_redis_state(api, make_test, server, backends):
    test_id = make_test()["cb_model_id"]
    fetched = api.post(
        "/api/fetch_recommended_variant",
        json={"cb_model_id": test_id, "context": {"plan": "pro"}, "request_id": "del-1"},
    )
    assert fetched.status_code == 200
    redis = backends.redis(server.data_dir)
    pattern = f"{backends.prefix}:{{{test_id}}}:*"
    assert list(redis.scan_iter(match=pattern))

    response = api.post(f"/api/delete_model/{test_id}")
    assert response.status_code == 200
    assert response.json() == {
        "message": f"Test {test_id} successfully deleted.",
        "cb_model_id": test_id,
    }
    assert list(redis.scan_iter(match=pattern)) == []
    assert api.get(f"/api/model_details/{test_id}").status_code == 404
    assert api.post(f"/api/delete_model/{test_id}").status_code == 404
    assert test_id not in {item["cb_model_id"] for item in api.get("/api/models").json()}
    again = api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id})
    assert again.status_code == 404


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


BAD_CREATES = [
    ({"variants": {"0": "a", "1": "b"}}, "name"),
    ({"name": "", "variants": {"0": "a", "1": "b"}}, "name"),
    ({"name": "   ", "variants": {"0": "a", "1": "b"}}, "name"),
    ({"name": 12, "variants": {"0": "a", "1": "b"}}, "name"),
    ({"name": "x" * 201, "variants": {"0": "a", "1": "b"}}, "name"),
    ({"name": "t"}, "variants"),
    ({"name": "t", "variants": ["a", "b"]}, "variants"),
    ({"name": "t", "variants": {"0": "a"}}, "between 2 and 1000"),
    ({"name": "t", "variants": {}}, "between 2 and 1000"),
    ({"name": "t", "variants": {str(i): f"v{i}" for i in range(1001)}}, "between 2 and 1000"),
    ({"name": "t", "variants": {"a": "x", "1": "y"}}, "non-negative integer"),
    ({"name": "t", "variants": {"-1": "x", "1": "y"}}, "non-negative integer"),
    ({"name": "t", "variants": {"1.5": "x", "1": "y"}}, "non-negative integer"),
    ({"name": "t", "variants": {"0": "a", "1": ["b"]}}, "string or an integer"),
    ({"name": "t", "variants": {"0": "a", "1": "b"}, "sampling": "greedy"}, "sampling"),
    ({"name": "t", "variants": {"0": "a", "1": "b"}, "sampling": 1}, "sampling"),
    ({"name": "t", "variants": {"0": "a", "1": "b"}, "prior": "jeffreys"}, "prior must be one of"),
    ({"name": "t", "variants": {"0": "a", "1": "b"}, "prior": None}, "prior"),
    (
        {"name": "t", "variants": {"0": "a", "1": "b"}, "forgetting": "always"},
        "forgetting must be one of on_change, never",
    ),
    ({"name": "t", "variants": {"0": "a", "1": "b"}, "forgetting": 0}, "forgetting"),
    ({"name": "t", "variants": {"0": "a", "1": True}}, "string or an integer"),
    ({"name": "t", "variants": {"0": "a", "1": None}}, "string or an integer"),
    ({"name": "t", "variants": {"0": "a", "1": 1.5}}, "string or an integer"),
    ({"name": "t", "variants": {"0": "a", "1": "l" * 201}}, "at most 200"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_CREATES)
def test_bad_create_bodies_are_refused_and_create_nothing(api, body, mentions):
    before = len(api.get("/api/models").json())
    detail = _error(api.post("/api/create_model", json=body), 400)
    assert mentions in detail
    assert len(api.get("/api/models").json()) == before


@pytest.mark.parametrize("variants", [{"0": "same", "1": "same"}, {"0": 7, "1": "7"}])
def test_two_variants_with_one_label_are_a_conflict_and_create_nothing(api, variants):
    before = len(api.get("/api/models").json())
    detail = _error(api.post("/api/create_model", json={"name": "t", "variants": variants}), 409)
    assert "unique" in detail
    assert len(api.get("/api/models").json()) == before


def test_a_thousand_variants_are_accepted(api):
    variants = {str(i): f"v{i}" for i in range(1000)}
    response = api.post("/api/create_model", json={"name": "Wide", "variants": variants})
    assert response.status_code == 200
    assert len(response.json()["variants"]) == 1000


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"text"', b"42", b'{"name": NaN}', b"\xff\xfe{}"],
    ids=["invalid", "array", "string", "number", "nan", "bad-utf8"],
)
def test_bodies_that_are_not_a_json_object_get_400(api, raw):
    response = api.post(
        "/api/create_model", content=raw, headers={"content-type": "application/json"}
    )
    _error(response, 400)


def test_a_wrong_content_type_gets_415(api):
    response = api.post(
        "/api/create_model", content=b"name=x", headers={"content-type": "text/plain"}
    )
    _error(response, 415)


def test_a_body_over_the_limit_gets_413_before_it_is_read(api):
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = api.post(
        "/api/create_model", content=huge, headers={"content-type": "application/json"}
    )
    assert "limit" in _error(response, 413)


@pytest.mark.parametrize(
    "test_id", [str(uuid.uuid4()), "not-a-uuid", "..%2F..%2Fetc", "%00", "1' OR '1'='1"]
)
def test_unknown_or_malformed_ids_get_404(api, test_id):
    _error(api.get(f"/api/model_details/{test_id}"), 404)
    _error(api.post(f"/api/delete_model/{test_id}"), 404)


def test_wrong_methods_get_405(api, make_test):
    test_id = make_test()["cb_model_id"]
    _error(api.get("/api/create_model"), 405)
    _error(api.get(f"/api/delete_model/{test_id}"), 405)
    _error(api.post("/api/models"), 405)
    _error(api.delete(f"/api/model_details/{test_id}"), 405)


def test_unknown_paths_get_a_json_404(api):
    _error(api.get("/api/no_such_endpoint"), 404)
