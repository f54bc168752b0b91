"""System pages of the operator's console: the System page, API tokens, the audit log, users.

Every change goes through `system.services` (the same rules as the REST API's /admin/
endpoints), so it is validated, audited, and seen by every worker from its next request.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from redis.exceptions import RedisError
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from api.access import actor_of
from api.system_views import system_config
from bandit import defaults
from console import forms
from core.errors import ServiceError
from system import config, services
from system.models import ApiToken, AuditEntry, SystemConfig

RECENT_AUDIT_ENTRIES = 8


# --- The System page ------------------------------------------------------------------------


@admin.register(SystemConfig)
class SystemAdmin(ModelAdmin):
    """The one configuration row, shown as the System page rather than as a list."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_change_permission(request):
            return super().changelist_view(request, extra_context)  # the admin's refusal
        actor = actor_of(request)
        action = request.POST.get("action") if request.method == "POST" else None
        bound = {
            "defaults": forms.TestDefaultsForm,
            "system": forms.SystemSettingsForm,
            "redis": forms.RedisSettingsForm,
        }
        context: dict[str, Any] = {}
        try:
            if action == "protection":
                enabled = services.set_protection(actor, request.POST.get("enabled") == "on")
                messages.success(request, f"API protection is {'on' if enabled else 'off'}.")
                return HttpResponseRedirect(request.path)
            if action == "generate_token":
                # Shown once, on this answer only: never stored, never redirected through.
                context["new_token"] = services.generate_primary_token(actor)
                context["new_token_name"] = "primary"
            if action == "revoke":
                token = services.revoke_token(actor, _int(request.POST.get("token_id")))
                messages.success(request, f"Token “{token.name}” ({token.masked}) revoked.")
                return HttpResponseRedirect(request.path)
            if action in bound:
                form = bound[action](request.POST)
                if form.apply(actor):
                    messages.success(request, "Saved. Every worker uses it from its next request.")
                    return HttpResponseRedirect(request.path)
                context[f"{action}_form"] = form
        except (ServiceError, RedisError) as exc:
            messages.error(request, exc.detail if isinstance(exc, ServiceError) else str(exc))
        return self._render(request, context)

    def _render(self, request: HttpRequest, context: dict[str, Any]) -> TemplateResponse:
        current = config.current()
        settings_now = system_config()
        redis_now = services.redis_health()
        context.setdefault(
            "defaults_form", forms.TestDefaultsForm(initial=defaults.current().as_dict())
        )
        context.setdefault(
            "system_form",
            forms.SystemSettingsForm(
                initial={k: settings_now[k] for k in ("host", "port", "debug")}
            ),
        )
        context.setdefault(
            "redis_form",
            forms.RedisSettingsForm(
                initial={
                    "ttl": current.context_ttl_seconds,
                    "host": current.redis_host or "",
                    "port": current.redis_port,
                }
            ),
        )
        tokens = ApiToken.objects.filter(revoked_at__isnull=True).order_by("-created_at")
        context.update(
            {
                **self.admin_site.each_context(request),
                "title": "System",
                "opts": self.opts,
                "protected_api": current.protected_api,
                "primary_token": current.primary_token_masked,
                "tokens": [token for token in tokens if token.is_active],
                "expired_tokens": [token for token in tokens if not token.is_active],
                "redis": redis_now,
                "audit": AuditEntry.objects.all()[:RECENT_AUDIT_ENTRIES],
            }
        )
        return TemplateResponse(request, "admin/adminapi/system.html", context)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ServiceError("No such token.") from None


# --- API tokens -----------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(ModelAdmin):
    list_display = ("name", "masked", "status", "created_at", "expires_at", "last_used_at")
    list_filter = ("is_primary", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix")
    fields = ("name", "expires_at")
    actions = ["revoke"]

    @display(
        description="Status",
        label={"active": "success", "expired": "warning", "revoked": "danger"},
    )
    def status(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "active" if token.is_active else "expired"

    @display(description="Token")
    def masked(self, token: ApiToken) -> str:
        return token.masked

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # revoke instead: the record of a token outlives its use

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        """A named token, made by the service; the answer shows it once, with a copy button."""
        form_class = self.get_form(request)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                token, raw = services.create_token(
                    actor_of(request),
                    name=form.cleaned_data["name"],
                    expires_at=form.cleaned_data.get("expires_at"),
                )
            except ServiceError as exc:
                form.add_error(None, exc.detail)
            else:
                return TemplateResponse(
                    request,
                    "admin/adminapi/token_created.html",
                    {
                        **self.admin_site.each_context(request),
                        "title": f"Token “{token.name}” created",
                        "opts": self.opts,
                        "new_token": raw,
                        "token": token,
                    },
                )
        return super().add_view(request, form_url, extra_context)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset) -> None:
        count = 0
        for token in queryset:
            services.revoke_token(actor_of(request), token.pk)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")


# --- The audit log --------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ModelAdmin):
    list_display = ("at", "actor", "address", "action", "target", "details")
    list_filter = ("action", "actor")
    search_fields = ("actor", "target", "action")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


# --- Users, in the console's theme ----------------------------------------------------------

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass
