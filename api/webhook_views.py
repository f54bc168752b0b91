"""The staff webhook endpoints under /admin/webhooks (webhooks.services does the work)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api import webhook_serializers as shapes
from api.access import actor_of
from api.serializers import errors
from api.system_views import STAFF_READ, STAFF_WRITE, StaffView
from api.validation import validated
from api.views import body_object
from core.errors import NotFound
from webhooks import selectors, services

NOT_FOUND = errors(404)


def _id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"Webhook {raw!r} not found.")
    return int(raw)


class WebhooksView(StaffView):
    @extend_schema(
        tags=["Webhooks"],
        summary="List the webhooks",
        responses={200: shapes.WebhookList, **STAFF_READ},
    )
    def get(self, request: Request) -> Response:
        return Response({"webhooks": selectors.webhooks()})

    @extend_schema(
        tags=["Webhooks"],
        summary="Create a webhook (its secret is in this answer only)",
        request=shapes.WebhookCreate,
        responses={201: shapes.WebhookCreated, **STAFF_WRITE},
    )
    def post(self, request: Request) -> Response:
        body = validated(shapes.WebhookCreate, body_object(request))
        webhook = services.create_webhook(
            actor_of(request),
            url=body["url"],
            event_types=body["events"],
            verify_tls=body["verify_tls"],
        )
        return Response(selectors.webhook(webhook, with_secret=True), status=201)


class DeleteWebhookView(StaffView):
    @extend_schema(
        tags=["Webhooks"],
        summary="Delete a webhook; what it was not sent yet never is",
        request=None,
        responses={200: shapes.WebhookDeleted, **STAFF_WRITE, **NOT_FOUND},
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        known = _id(webhook_id)
        services.delete_webhook(actor_of(request), known)
        return Response({"message": "Webhook deleted", "id": known})


class PingWebhookView(StaffView):
    @extend_schema(
        tags=["Webhooks"],
        summary="Send a PING event to a webhook",
        request=None,
        responses={200: shapes.PingQueued, **STAFF_WRITE, **NOT_FOUND},
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        event = services.ping(actor_of(request), _id(webhook_id))
        return Response({"message": "PING queued", "event": str(event.uuid)})


class WebhookDeliveriesView(StaffView):
    @extend_schema(
        tags=["Webhooks"],
        summary="A webhook's recent deliveries, newest first",
        responses={200: shapes.DeliveryList, **STAFF_READ, **NOT_FOUND},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        webhook = services.get_webhook(_id(webhook_id))
        return Response({"deliveries": selectors.recent_deliveries(webhook)})
