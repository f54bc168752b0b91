"""The forms of the console's System page.

They only parse what a browser sends (text fields into numbers and booleans); the values are
then checked by the same serializers as the REST API's (api.system_serializers) and handed to
the services. A refusal comes back to the form as an error, never as a server error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from api import system_serializers as shapes
from api import webhook_serializers as webhook_shapes
from api.validation import first_message, validated
from bandit import defaults
from core.errors import Conflict, InvalidInput
from system import services
from system.audit import Actor
from webhooks import services as webhook_services
from webhooks.events import EVENT_TYPES
from webhooks.models import Webhook


class ServiceForm(forms.Form):
    """A form whose `apply` checks its values with a serializer and calls one service; a
    refusal of either becomes a form error."""

    def apply(self, actor: Actor) -> bool:
        if not self.is_valid():
            return False
        try:
            self.call(actor, self.cleaned_data)
        except serializers.ValidationError as exc:
            self.add_error(None, first_message(exc.detail))
            return False
        except (InvalidInput, Conflict) as exc:
            self.add_error(None, exc.detail)
            return False
        return True

    def call(self, actor: Actor, data: dict[str, Any]) -> None:
        raise NotImplementedError


class TestDefaultsForm(ServiceForm):
    prefix = "defaults"
    trail_time_window_minutes = forms.IntegerField(
        label="Trail window (minutes)", help_text="How far back a new Test's trails reach."
    )
    trail_bucket_granularity_seconds = forms.IntegerField(
        label="Trail granularity (seconds)", help_text="The size of one trail bucket."
    )
    minimum_update_requests = forms.IntegerField(
        label="Minimum rewards", help_text="Rewards before a new Test stops choosing uniformly."
    )

    def call(self, actor: Actor, data: dict[str, Any]) -> None:
        checked = validated(shapes.TestDefaultsChange, dict(data))
        defaults.update(actor, checked["test_settings"])


class SystemSettingsForm(ServiceForm):
    prefix = "system"
    host = forms.CharField(label="Host", max_length=255, help_text="Applies at the next start.")
    port = forms.IntegerField(label="Port", help_text="Applies at the next start.")
    debug = forms.BooleanField(
        label="Debug logging",
        required=False,
        help_text="Log every decision and reward (DEBUG); applies at once on every worker.",
    )

    def call(self, actor: Actor, data: dict[str, Any]) -> None:
        services.update_system_config(actor, **validated(shapes.SystemConfigChange, dict(data)))


class RedisSettingsForm(ServiceForm):
    prefix = "redis"
    ttl = forms.IntegerField(
        label="Context TTL (seconds)",
        help_text="How long a decision's context waits for its reward.",
    )
    host = forms.CharField(
        label="Redis host",
        required=False,
        help_text="Leave empty to keep the current Redis. Scout checks that a new one answers.",
    )
    port = forms.IntegerField(label="Redis port", required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Django's clean() answers cleaned_data; overrides may not
        if cleaned.get("port") is not None and not cleaned.get("host"):
            raise forms.ValidationError("Give a Redis host with the port, or leave both empty.")
        return cleaned

    def call(self, actor: Actor, data: dict[str, Any]) -> None:
        body: dict[str, Any] = {"ttl": data["ttl"]}
        if data.get("host"):
            body["host"] = data["host"]
            if data.get("port") is not None:
                body["port"] = data["port"]
        services.update_redis_config(actor, **validated(shapes.RedisConfigChange, body))


class WebhookForm(ServiceForm):
    """A new webhook; after `apply`, `created` holds it (with the secret to show once)."""

    prefix = "webhook"
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where Scout posts the events: an http or https URL.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[(name, name) for name in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )
    verify_tls = forms.BooleanField(
        label="Verify TLS certificates",
        required=False,
        initial=True,
        help_text="Turn off only for a receiver with a self-signed certificate, in development.",
    )
    created: Webhook | None = None

    def call(self, actor: Actor, data: dict[str, Any]) -> None:
        body = validated(webhook_shapes.WebhookCreate, dict(data))
        self.created = webhook_services.create_webhook(
            actor, url=body["url"], event_types=body["events"], verify_tls=body["verify_tls"]
        )
