"""The operators' changes to webhooks, each audited (system.audit)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from core.errors import NotFound
from system import audit
from webhooks import events, signing
from webhooks.models import Event, Webhook


def get_webhook(webhook_id: int) -> Webhook:
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return webhook


def create_webhook(
    actor: audit.Actor | None, *, url: str, event_types: Sequence[str], verify_tls: bool = True
) -> Webhook:
    """A new webhook with a new secret (the caller shows it once). `url` and `event_types`
    come checked (api.webhook_serializers)."""
    actor = actor or audit.Actor.system()
    subscribed = [type for type in events.EVENT_TYPES if type in set(event_types)]
    with transaction.atomic():
        webhook = Webhook.objects.create(
            url=url,
            events=subscribed,
            verify_tls=verify_tls,
            secret=signing.new_secret(),
            created_by=actor.name[:150],
        )
        audit.record(
            actor,
            "webhook_created",
            str(webhook.pk),
            url=url,
            events=subscribed,
            verify_tls=verify_tls,
        )
    return webhook


def delete_webhook(actor: audit.Actor | None, webhook_id: int) -> Webhook:
    """Delete a webhook and its deliveries (those not sent yet are never sent)."""
    with transaction.atomic():
        webhook = get_webhook(webhook_id)
        audit.record(actor, "webhook_deleted", str(webhook.pk), url=webhook.url)
        webhook.delete()
    return webhook


def ping(actor: audit.Actor | None, webhook_id: int) -> Event:
    """Queue a PING for one webhook, whatever it subscribed to."""
    actor = actor or audit.Actor.system()
    with transaction.atomic():
        webhook = get_webhook(webhook_id)
        event = events.to(
            webhook,
            events.PING,
            {"webhook_id": webhook.pk, "message": "A test event from Scout.", "by": actor.name},
            subject=f"ping:{webhook.pk}",
        )
        audit.record(actor, "webhook_ping", str(webhook.pk), event=str(event.uuid))
    return event
