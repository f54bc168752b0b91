"""One view per operation of the contract. Views shape HTTP; the services hold the rules."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiExample, extend_schema
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adminapi import config
from adminapi.auth import actor_of
from bandit import selectors, services
from bandit.api import serializers as shapes
from bandit.api.serializers import READ_ERRORS, WRITE_ERRORS, errors
from bandit.state import ConfigMoved
from project.errors import InvalidInput
from project.negotiation import JsonOnly


class ApiView(APIView):
    """Base of the Test endpoints: callers are authenticated only when API protection asks
    for it (see adminapi.auth.ApiAccess), so an open API never rejects a stray header."""

    # True on the products' hot path: the caller is let in under the worker's copy of the
    # configuration, and the service's Redis script checks that copy is current.
    config_checked_by_script = False
    content_negotiation_class = JsonOnly

    def perform_authentication(self, request: Request) -> None:
        pass

    def handle_exception(self, exc: Exception) -> Response:
        if self.config_checked_by_script and self._configuration_moved(exc):
            # An operator changed protection or tokens since this worker loaded them, and
            # nothing was written: let the caller in (or not) under the new configuration.
            request = self.request
            for cached in ("_user", "_auth"):  # DRF's memo of who the caller is
                request.__dict__.pop(cached, None)
            try:
                self.initial(request, *self.args, **self.kwargs)
                handler = getattr(self, request.method.lower())
                return handler(request, *self.args, **self.kwargs)
            except Exception as again:  # noqa: BLE001 - answered like any error below
                exc = again
        return super().handle_exception(exc)

    def _configuration_moved(self, exc: Exception) -> bool:
        """Whether `exc` came from a stale copy of the configuration (checked once a request):
        the script says so, or a refusal that a Redis GET shows to be out of date."""
        if getattr(self, "_checked_again", False):
            return False
        self._checked_again = True
        try:
            if isinstance(exc, ConfigMoved):
                config.adopt(exc.published)
                return True
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                copy = config.known().version
                return config.current().version != copy
        except (RedisError, DatabaseError):  # answered as the original error (503 or 401)
            return False
        return False


def body_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object (an empty body reads as an empty object)."""
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


class CreateTestView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Create a Test",
        request=shapes.CreateTestRequest,
        responses={200: shapes.CreateTestResponse, **errors(*WRITE_ERRORS)},
        examples=[
            OpenApiExample(
                "Two variants",
                value={"name": "Checkout button", "variants": {"0": "Blue", "1": "Green"}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request)
        defaults = services.default_test_settings()
        # Beyond the contract: a Test may set its own trail and minimum, else the defaults.
        test_settings = services.validate_test_settings(
            window_minutes=body.get(
                "trail_time_window_minutes", defaults.trail_time_window_minutes
            ),
            granularity_seconds=body.get(
                "trail_bucket_granularity_seconds", defaults.trail_bucket_granularity_seconds
            ),
            minimum_updates=body.get("minimum_update_requests", defaults.minimum_update_requests),
        )
        test = services.create_test(
            name=body.get("name"),
            variants=body.get("variants"),
            test_settings=test_settings,
            actor=actor_of(request),
        )
        return Response(
            {
                "message": "Test created successfully",
                "cb_model_id": str(test.id),
                "model_id": str(test.id),
                "name": test.name,
                "variants": test.variants,
            }
        )


class DeleteTestView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Delete a Test and all its data",
        request=None,
        responses={200: shapes.DeleteTestResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        test_id = services.delete_test(cb_model_id, actor_of(request))
        return Response(
            {"message": f"Test {test_id} successfully deleted.", "cb_model_id": test_id}
        )


class ListTestsView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="List Tests with their summaries",
        responses={200: shapes.TestSummary(many=True), **errors(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.list_tests())


class TestDetailsView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="A Test's details, performance, trails and analysis",
        responses={200: shapes.TestDetails, **errors(404, *READ_ERRORS)},
    )
    def get(self, request: Request, cb_model_id: str) -> Response:
        return Response(selectors.test_details(cb_model_id))


class FetchRecommendedVariantView(ApiView):
    config_checked_by_script = True

    @extend_schema(
        tags=["Decisions and rewards"],
        summary="Which variant should this visitor see?",
        description=(
            "Thompson sampling over what the Test learned for this context. The decision and "
            "its context are stored under `request_id` (generated when not sent) for the "
            "context TTL, so a reward can name only the `request_id`. Sending a `request_id` "
            "again answers the same decision."
        ),
        request=shapes.FetchRequest,
        responses={200: shapes.FetchResponse, **errors(404, *WRITE_ERRORS)},
        examples=[
            OpenApiExample(
                "With a context",
                value={
                    "cb_model_id": "3f2b8c1e-7d4a-4e8b-9c61-2a5d0f9e1b7c",
                    "context": {"device": "mobile", "plan": "pro"},
                    "request_id": "visit-1",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        body = body_object(request)
        if body.get("cb_model_id") is None:
            raise InvalidInput("cb_model_id is required.")
        recommendation = services.recommend(
            str(body["cb_model_id"]), context=body.get("context"), request_id=body.get("request_id")
        )
        body = {
            "cb_model_id": recommendation.test_id,
            "variant_id": recommendation.variant_id,
            "variant_label": recommendation.variant_label,
            "recommended_variant": recommendation.variant_label,
            "request_id": recommendation.request_id,
            "is_global_rollout": recommendation.is_global_rollout,
        }
        if recommendation.degraded:
            body["degraded"] = True
            body["context_stored"] = False
            body["detail"] = (
                "Redis is unavailable: this decision was chosen from the last known state and "
                "not stored; report its reward with the variant_id and the context inline."
            )
        return Response(body)


class UpdateTestView(ApiView):
    config_checked_by_script = True

    @extend_schema(
        tags=["Decisions and rewards"],
        summary="Report rewards",
        description=(
            "Up to 1,000 rewards; each succeeds or fails on its own (failures are listed with "
            "their index and reason). A second reward for the same `request_id` is not counted "
            "again: it is reported as a duplicate, so retries are safe."
        ),
        request=shapes.UpdateRequest,
        responses={200: shapes.UpdateResponse, **errors(404, *WRITE_ERRORS)},
        examples=[
            OpenApiExample(
                "By request id",
                value={"updates": [{"request_id": "visit-1", "variant_id": 0, "reward": 1}]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = body_object(request)
        updates = body.get("updates")
        if not isinstance(updates, list):
            raise InvalidInput("updates must be a list of reward entries.")
        limit = services.settings.SCOUT_MAX_UPDATES_PER_BATCH
        if len(updates) > limit:
            raise InvalidInput(
                f"updates has {len(updates)} entries; at most {limit} are accepted per request."
            )
        report = services.record_rewards(cb_model_id, updates)
        failed = len(report.errors)
        return Response(
            {
                "message": (
                    f"Test updated successfully with {report.processed} records "
                    f"({failed} failures)."
                ),
                "cb_model_id": report.test_id,
                "processed_updates": report.processed,
                "failed_updates": failed,
                "duplicate_updates": len(report.duplicates),
                "errors": report.errors,
                "duplicates": report.duplicates,
            }
        )


class RolloutView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Serve one variant to everyone",
        request=shapes.RolloutRequest,
        responses={200: shapes.RolloutResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = body_object(request)
        test, variant_id = services.rollout(cb_model_id, body.get("variant"), actor_of(request))
        return Response(
            {
                "message": (
                    f"Global variant rollout for Test {test.id} set to variant {variant_id}."
                ),
                "cb_model_id": str(test.id),
                "global_variant_id": variant_id,
                "global_variant_label": test.label_of(variant_id),
            }
        )


class ClearRolloutView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Return to sampling",
        request=None,
        responses={200: shapes.ClearRolloutResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        test = services.clear_rollout(cb_model_id, actor_of(request))
        return Response(
            {
                "message": f"Global variant rollout cleared for Test {test.id}.",
                "cb_model_id": str(test.id),
            }
        )
