"""Webhooks, the events they are told of, and each event's delivery to each webhook.

`Event` and `Delivery` are the outbox: written in the transaction of the change that caused
the event (webhooks.events.emit), so that an event is sent if and only if its change was kept,
and read by the sender (webhooks.sender) until each delivery succeeds or is given up.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Webhook(models.Model):
    """An endpoint that Scout posts the events it subscribed to, signed with its secret."""

    url = models.URLField(max_length=2000)
    # The event types it subscribed to (webhooks.events.EVENT_TYPES).
    events = models.JSONField(default=list)
    verify_tls = models.BooleanField(default=True)
    # The key of its signatures: 64 hex characters, shown once when it is created. Kept as it
    # is (not hashed), since every delivery is signed with it.
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class Event(models.Model):
    """Something that happened, as every subscribed webhook is told of it."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40)
    time = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.type} {self.uuid}"


class Delivery(models.Model):
    """One event for one webhook: pending until the receiver answers 2xx (delivered) or the
    retry period ends (failed)."""

    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATES = [(PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    # What the event is about (a Test's id, "redis"): a webhook receives the events of one
    # subject in the order they happened, each once the one before it is delivered or failed.
    subject = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender that took the delivery holds it until then; past it, any sender may take it
    # (a sender that stopped while sending hands its deliveries on).
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["webhook", "subject", "state"], name="delivery_subject"),
            models.Index(fields=["webhook", "-id"], name="delivery_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook}"


class RedisStatus(models.Model):
    """One row: whether Redis was last announced available, so that of all the hosts that see
    it go or come back, one announces it (webhooks.sender)."""

    available = models.BooleanField(default=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Redis {'available' if self.available else 'unavailable'} since {self.changed_at}"
