"""What operators configure: protection, tokens, defaults, Redis; and the audit of changes."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SystemConfig(models.Model):
    """The one row of operator settings. Empty fields fall back to the environment's values."""

    protected_api = models.BooleanField(default=False)
    host = models.CharField(max_length=255, blank=True, default="")
    port = models.PositiveIntegerField(null=True, blank=True)
    debug = models.BooleanField(default=False)
    trail_time_window_minutes = models.PositiveIntegerField(null=True, blank=True)
    trail_bucket_granularity_seconds = models.PositiveIntegerField(null=True, blank=True)
    minimum_update_requests = models.PositiveIntegerField(null=True, blank=True)
    redis_host = models.CharField(max_length=255, blank=True, default="")
    redis_port = models.PositiveIntegerField(null=True, blank=True)
    context_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Raised on every change; workers compare it with what they cached (see system.config).
    version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "system configuration"
        verbose_name_plural = "system configuration"

    def __str__(self) -> str:
        return "System configuration"

    @classmethod
    def load(cls) -> SystemConfig:
        config, _ = cls.objects.get_or_create(pk=1)
        return config


class ApiToken(models.Model):
    """A bearer token for the API. Only a SHA-256 of the token is stored; the token itself is
    shown once, when it is made."""

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    suffix = models.CharField(max_length=8, editable=False)
    # The token of the contract's `generate_token`: a new one replaces it.
    is_primary = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.suffix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )


class AuditEntry(models.Model):
    """Who changed what, when, and from where."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
