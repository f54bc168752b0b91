"""One view per operation of the contract's Test endpoints. A view checks its body with its
request serializer, lets the caller in (api.access), calls one service and shapes the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import access, hot_path
from api import serializers as shapes
from api.negotiation import JsonOnly
from api.serializers import READ_ERRORS, WRITE_ERRORS, errors
from api.validation import validated
from bandit import changes, selectors, services
from core.errors import InvalidInput
from system import config


class ApiView(APIView):
    """Base of the `/api/` endpoints. Callers are let in by `api.access.admit` under an
    explicit configuration, and only when API protection asks for it, so an open API never
    rejects a stray header. The authentication classes are named for the OpenAPI schema and
    the `WWW-Authenticate` header of a 401; nothing here reads `request.user`."""

    authentication_classes = [access.BearerTokenAuthentication, SessionAuthentication]
    permission_classes: list[type] = []
    content_negotiation_class = JsonOnly
    # False for the products' hot path, whose views let the caller in themselves
    # (`access.serve_checked`), under the worker's copy of the configuration.
    admit_first = True

    def perform_authentication(self, request: Request) -> None:
        """Who the caller is, is asked only when protection is on (see `initial`)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.admit_first:
            self.settings_in_force = config.current()
            access.admit(request, self.settings_in_force)

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scout"'

    def actor(self, request: Request) -> Any:
        return access.actor_of(request, self.settings_in_force)


class HotPathView(ApiView):
    """Base of the two endpoints products call in their request path (api.hot_path): a JSON
    body is served without DRF's request cycle, anything else by DRF as usual. `answer` holds
    what the endpoint does, for both paths; it lets the caller in itself
    (`access.serve_checked`), under the worker's copy of the configuration."""

    admit_first = False

    def answer(self, request: Request, data: object, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: Any) -> Response:
        return Response(self.answer(request, request.data, **kwargs))

    @classmethod
    def as_view(  # type: ignore[override]  # a plain Django view, not DRF's
        cls, **initkwargs: Any
    ) -> Callable[..., HttpResponse]:
        return hot_path.fast_view(cls, super().as_view(**initkwargs), initkwargs)


def body_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object (an empty body reads as an empty object)."""
    return json_object(request.data)


def json_object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


class CreateTestView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Create a Test",
        request=shapes.CreateTestRequest,
        responses={200: shapes.CreateTestResponse, **errors(409, *WRITE_ERRORS)},
        examples=[
            OpenApiExample(
                "Two variants",
                value={"name": "Checkout button", "variants": {"0": "Blue", "1": "Green"}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        # Beyond the contract: a Test may set its own trail and minimum, else the defaults.
        body = validated(shapes.CreateTestRequest, body_object(request))
        test = services.create_test(
            name=body["name"],
            variants=body["variants"],
            test_settings=body["test_settings"],
            sampling=body["sampling"],
            prior=body["prior"],
            forgetting=body["forgetting"],
            reward_window_seconds=body["reward_window_seconds"],
            default_reward=body["default_reward"],
            minimum_variant_share=body["minimum_variant_share"],
            sticky_assignment=body["sticky_assignment"],
            sticky_seconds=body["sticky_seconds"],
            holdout_share=body["holdout_share"],
            schedule=body["schedule"],
            actor=self.actor(request),
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
        test_id = services.delete_test(cb_model_id, self.actor(request))
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
        return Response(selectors.details(cb_model_id))


class FetchRecommendedVariantView(HotPathView):
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
    def post(self, request: Request, **kwargs: Any) -> Response:
        return super().post(request, **kwargs)

    def answer(self, request: Request, data: object, **kwargs: Any) -> dict[str, Any]:
        recommendation = access.serve_checked(request, partial(_decide, data, ranked=False))
        body = {
            "cb_model_id": recommendation.test_id,
            "variant_id": recommendation.variant_id,
            "variant_label": recommendation.variant_label,
            "recommended_variant": recommendation.variant_label,
            "request_id": recommendation.request_id,
            "is_global_rollout": recommendation.is_global_rollout,
            "propensity": recommendation.propensity,
            "holdout": recommendation.holdout,
        }
        return {**body, **_degraded_fields(recommendation)}


def _decide(
    data: object, settings_in_force: config.Config, *, ranked: bool
) -> services.Recommendation:
    # Checked once the caller is let in: a protected API answers 401 before 400.
    body = validated(shapes.FetchRequest, json_object(data))
    return services.recommend(
        body["cb_model_id"],
        context=body.get("context") or {},
        request_id=body.get("request_id"),
        eligible=body.get("eligible_variants"),
        unit_id=body.get("unit_id"),
        ranked=ranked,
        settings_in_force=settings_in_force,
    )


def _degraded_fields(recommendation: services.Recommendation) -> dict[str, Any]:
    if not recommendation.degraded:
        return {}
    return {
        "degraded": True,
        "context_stored": False,
        "detail": (
            "Redis is unavailable: this decision was chosen from the last known state and "
            "not stored; report its reward with the variant_id and the context inline."
        ),
    }


class FetchRankedVariantsView(HotPathView):
    @extend_schema(
        tags=["Decisions and rewards"],
        summary="In which order should this visitor see the variants?",
        description=(
            "Every eligible variant, ranked by the same Thompson sampling that chooses one "
            "(the first is distributed as `fetch_recommended_variant`'s choice). The ranking "
            "is stored under `request_id`; a reward for it names the variant it is for with "
            "`variant_id` (shown, clicked), and each variant of the ranking counts one reward."
        ),
        request=shapes.FetchRequest,
        responses={200: shapes.FetchRankedResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        return super().post(request, **kwargs)

    def answer(self, request: Request, data: object, **kwargs: Any) -> dict[str, Any]:
        recommendation = access.serve_checked(request, partial(_decide, data, ranked=True))
        labels = recommendation.ranking or []
        body: dict[str, Any] = {
            "cb_model_id": recommendation.test_id,
            "variants": [
                {"variant_id": variant, "variant_label": label} for variant, label in labels
            ],
            "request_id": recommendation.request_id,
            "is_global_rollout": recommendation.is_global_rollout,
            "propensity": recommendation.propensity,
            "holdout": recommendation.holdout,
        }
        return {**body, **_degraded_fields(recommendation)}


class UpdateTestView(HotPathView):
    @extend_schema(
        tags=["Decisions and rewards"],
        summary="Report rewards",
        description=(
            "Up to SCOUT_MAX_UPDATES_PER_BATCH (1,000 by default) rewards; each succeeds or "
            "fails on its own (failures are listed with their index and reason). A second "
            "reward for the same `request_id` is not counted again: it is reported as a "
            "duplicate, so retries are safe."
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
    def post(self, request: Request, **kwargs: Any) -> Response:
        return super().post(request, **kwargs)

    def answer(self, request: Request, data: object, **kwargs: Any) -> dict[str, Any]:
        cb_model_id = kwargs["cb_model_id"]

        def count(settings_in_force: config.Config) -> services.RewardReport:
            # Checked once the caller is let in: a protected API answers 401 before 400.
            entries = validated(shapes.UpdateRequest, json_object(data))["updates"]
            return services.record_rewards(
                cb_model_id, entries, settings_in_force=settings_in_force
            )

        report = access.serve_checked(request, count)
        failed = len(report.errors)
        return {
            "message": (
                f"Test updated successfully with {report.processed} records ({failed} failures)."
            ),
            "cb_model_id": report.test_id,
            "processed_updates": report.processed,
            "failed_updates": failed,
            "duplicate_updates": len(report.duplicates),
            "errors": report.errors,
            "duplicates": report.duplicates,
        }


class RolloutView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Serve one variant to everyone",
        request=shapes.RolloutRequest,
        responses={200: shapes.RolloutResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = validated(shapes.RolloutRequest, body_object(request))
        test, variant_id = changes.rollout(cb_model_id, body["variant"], self.actor(request))
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


class AddVariantsView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Add variants to a running Test",
        description=(
            "What the Test learned about its other variants is kept; the new ones are chosen "
            "among from the next decision on, on every worker."
        ),
        request=shapes.AddVariantsRequest,
        responses={200: shapes.AddVariantsResponse, **errors(404, 409, *WRITE_ERRORS)},
        examples=[
            OpenApiExample("One more", value={"variants": {"3": "Label D"}}, request_only=True)
        ],
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = validated(shapes.AddVariantsRequest, body_object(request))
        test, added = changes.add_variants(
            cb_model_id,
            body["variants"],
            maximum=settings.SCOUT_MAX_VARIANTS,
            actor=self.actor(request),
        )
        return Response(
            {
                "message": f"Added {len(added)} variant(s) to Test {test.id}.",
                "cb_model_id": str(test.id),
                "added": added,
                "variants": test.variants,
                "retired_variants": test.retired_variants,
            }
        )


class RetireVariantView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Stop serving a variant",
        description=(
            "From the next decision on, on every worker. Its figures stay in the details, "
            "marked retired; rewards for decisions made before still count; its id is never "
            "reused. A Test keeps at least two variants in service."
        ),
        request=shapes.RetireVariantRequest,
        responses={200: shapes.RetireVariantResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = validated(shapes.RetireVariantRequest, body_object(request))
        test, variant_id = changes.retire_variant(cb_model_id, body["variant"], self.actor(request))
        return Response(
            {
                "message": f"Variant {variant_id} of Test {test.id} is retired.",
                "cb_model_id": str(test.id),
                "retired_variant_id": variant_id,
                "retired_variant_label": test.label_of(variant_id),
                "retired_variants": test.retired_variants,
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
        test = changes.clear_rollout(cb_model_id, self.actor(request))
        return Response(
            {
                "message": f"Global variant rollout cleared for Test {test.id}.",
                "cb_model_id": str(test.id),
            }
        )
