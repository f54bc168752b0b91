"""What the staff API and the console show of webhooks and their deliveries."""

from __future__ import annotations

from typing import Any

from core.time import iso
from webhooks.models import Delivery, Webhook

RECENT_DELIVERIES = 50


def webhook(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": hook.pk,
        "url": hook.url,
        "events": list(hook.events),
        "verify_tls": hook.verify_tls,
        "created_at": iso(hook.created_at),
        "created_by": hook.created_by,
    }
    if with_secret:
        shown["secret"] = hook.secret
    return shown


def webhooks() -> list[dict[str, Any]]:
    return [webhook(hook) for hook in Webhook.objects.all()]


def delivery(entry: Delivery) -> dict[str, Any]:
    return {
        "event": {
            "uuid": str(entry.event.uuid),
            "type": entry.event.type,
            "time": iso(entry.event.time),
        },
        "subject": entry.subject,
        "state": entry.state,
        "attempts": entry.attempts,
        "last_status": entry.last_status,
        "last_error": entry.last_error or None,
        "last_attempt_at": iso(entry.last_attempt_at),
        "next_attempt_at": iso(entry.next_attempt_at) if entry.state == Delivery.PENDING else None,
        "delivered_at": iso(entry.delivered_at),
    }


def recent_deliveries(hook: Webhook, limit: int = RECENT_DELIVERIES) -> list[dict[str, Any]]:
    """The webhook's latest deliveries, newest first."""
    latest = hook.deliveries.select_related("event").order_by("-id")[:limit]
    return [delivery(entry) for entry in latest]
