"""The endpoints that measure a Test: its decision log, streamed, its holdout share, and its
metric history."""

from __future__ import annotations

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api import evaluation_serializers as shapes
from api.serializers import READ_ERRORS, WRITE_ERRORS, errors
from api.validation import validated
from api.views import ApiView, body_object
from bandit import changes, decision_log, evaluation, history, services

_MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


class DecisionLogView(ApiView):
    @extend_schema(
        tags=["Evaluation"],
        summary="A Test's decisions and their rewards, streamed",
        description=(
            "Every decision the decision log holds (for `SCOUT_DECISION_LOG_DAYS`), oldest "
            "first: its time, `request_id`, variant, propensity, holdout flag, context, the "
            "learning settings in force, and the reward it earned (null until one came). "
            "Decisions reach the log within about `SCOUT_DECISION_LOG_SECONDS`. JSON lines by "
            "default, CSV with `format=csv`; any size streams in constant memory."
        ),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="First time included."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Times before this."),
            OpenApiParameter("format", str, enum=["jsonl", "csv"], description="jsonl or csv."),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="One JSON object per line."
            ),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="With a header."),
            **errors(400, 404, *READ_ERRORS),
        },
    )
    def get(self, request: Request, cb_model_id: str) -> StreamingHttpResponse:
        query = validated(shapes.DecisionLogQuery, request.query_params.dict())
        test = services.get_test(cb_model_id)
        records = decision_log.records(test, query.get("from"), query.get("to"))
        kind = query["format"]
        lines = (
            decision_log.csv_lines(records) if kind == "csv" else decision_log.json_lines(records)
        )
        response = StreamingHttpResponse(lines, content_type=_MEDIA_TYPES[kind])
        response["Content-Disposition"] = f'attachment; filename="decision-log-{test.id}.{kind}"'
        return response


class EvaluationView(ApiView):
    @extend_schema(
        tags=["Evaluation"],
        summary="How other policies would have done, from the decision log",
        description=(
            "The estimated mean reward, with 95% intervals (IPS, self-normalised IPS and "
            "doubly robust with the current model), of the Test's policy as it ran, a plain "
            "split, greedy on the current model and each variant alone, over the rewarded "
            f"decisions of the log (the most recent {evaluation.MAX_DECISIONS:,} at most), "
            "between `from` and `to`."
        ),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="First time included."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Times before this."),
        ],
        responses={200: shapes.EvaluationResponse, **errors(400, 404, *READ_ERRORS)},
    )
    def get(self, request: Request, cb_model_id: str) -> Response:
        query = validated(shapes.TimeRangeQuery, request.query_params.dict())
        test = services.get_test(cb_model_id)
        return Response(evaluation.evaluate(test, query.get("from"), query.get("to")))


class HoldoutShareView(ApiView):
    @extend_schema(
        tags=["Tests"],
        summary="Change a running Test's holdout share",
        request=shapes.HoldoutShareRequest,
        responses={200: shapes.HoldoutShareResponse, **errors(404, *WRITE_ERRORS)},
    )
    def post(self, request: Request, cb_model_id: str) -> Response:
        body = validated(shapes.HoldoutShareRequest, body_object(request))
        test = changes.set_holdout_share(cb_model_id, body["holdout_share"], self.actor(request))
        return Response(
            {
                "message": f"Holdout share of Test {test.id} set to {test.holdout_share:g}.",
                "cb_model_id": str(test.id),
                "holdout_share": test.holdout_share,
            }
        )


class MetricsView(ApiView):
    @extend_schema(
        tags=["Evaluation"],
        summary="The metrics of a Test's history",
        operation_id="metrics_list",
        responses={200: shapes.MetricList, **errors(404, *READ_ERRORS)},
    )
    def get(self, request: Request, cb_model_id: str) -> Response:
        test = services.get_test(cb_model_id)
        return Response(
            {
                "cb_model_id": str(test.id),
                "metrics": [
                    {"name": name, "description": text} for name, text in history.METRICS.items()
                ],
                "longest_range_days": history.LONGEST.days,
                "kept_days": settings.SCOUT_HISTORY_DAYS,
            }
        )


class MetricSeriesView(ApiView):
    @extend_schema(
        tags=["Evaluation"],
        summary="A metric of a Test per variant over a range of up to 14 days",
        operation_id="metric_series",
        description=(
            "Read from the Test's history in the database (kept `SCOUT_HISTORY_DAYS`, and not "
            "lost with Redis's data); activity shows up within about `SCOUT_HISTORY_SECONDS`. "
            "`to` defaults to now and `from` to an hour before `to`; a range of more than 14 "
            "days answers 400."
        ),
        parameters=[
            OpenApiParameter(
                "metric",
                str,
                OpenApiParameter.PATH,
                enum=list(history.METRICS),
                description=(
                    "predictions, rewards, mean_reward or traffic_share (404 for another)."
                ),
            ),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="First time included."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Times before this."),
        ],
        responses={200: shapes.MetricSeries, **errors(400, 404, *READ_ERRORS)},
    )
    def get(self, request: Request, cb_model_id: str, metric: str) -> Response:
        query = validated(shapes.TimeRangeQuery, request.query_params.dict())
        test = services.get_test(cb_model_id)
        start, end = history.window(query.get("from"), query.get("to"))
        return Response(history.series(test, metric, start, end))
