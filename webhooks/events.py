"""The events a webhook can subscribe to, and `emit`, which puts one in the outbox."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from webhooks.models import Delivery, Event, Webhook

TEST_CREATED = "TEST_CREATED"
TEST_DELETED = "TEST_DELETED"
ROLLOUT_SET = "ROLLOUT_SET"
ROLLOUT_CLEARED = "ROLLOUT_CLEARED"
WINNER_FOUND = "WINNER_FOUND"
VARIANT_ADDED = "VARIANT_ADDED"
VARIANT_RETIRED = "VARIANT_RETIRED"
TEST_STARTED = "TEST_STARTED"
TEST_ENDED = "TEST_ENDED"
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
REDIS_RECOVERED = "REDIS_RECOVERED"
PING = "PING"

EVENT_TYPES = (
    TEST_CREATED,
    TEST_DELETED,
    ROLLOUT_SET,
    ROLLOUT_CLEARED,
    WINNER_FOUND,
    VARIANT_ADDED,
    VARIANT_RETIRED,
    TEST_STARTED,
    TEST_ENDED,
    REDIS_UNAVAILABLE,
    REDIS_RECOVERED,
    PING,
)

# The subject of Redis's events: one order for all of them.
REDIS = "redis"


def emit(type: str, data: dict[str, Any], subject: str) -> Event | None:
    """Put an event in the outbox for every webhook subscribed to its type, inside the
    caller's transaction: it is sent if and only if the change that caused it is kept. Answers
    the event, or None when no webhook listens to this type.

    `subject` is what the event is about (a Test's id): a webhook receives one subject's
    events in the order they were emitted.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {type!r}.")
    with transaction.atomic():
        listening = [hook for hook in Webhook.objects.all() if type in hook.events]
        if not listening:
            return None
        event = Event.objects.create(type=type, data=data)
        Delivery.objects.bulk_create(
            Delivery(webhook=hook, event=event, subject=subject[:64]) for hook in listening
        )
    return event


def to(webhook: Webhook, type: str, data: dict[str, Any], subject: str) -> Event:
    """An event for one webhook alone, whatever it subscribed to (a ping)."""
    with transaction.atomic():
        event = Event.objects.create(type=type, data=data)
        Delivery.objects.create(webhook=webhook, event=event, subject=subject[:64])
    return event
