"""The console's Webhooks page: each webhook with its recent deliveries, a form to add one
(its secret shown once), and a ping and a delete for each.

Every change goes through `webhooks.services`, as the staff API's /admin/webhooks does, so it
is validated the same way and audited.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from unfold.admin import ModelAdmin

from api.access import actor_of
from console import forms
from core.errors import ServiceError
from webhooks import selectors, services
from webhooks.models import Webhook

DELIVERIES_SHOWN = 10


@admin.register(Webhook)
class WebhookAdmin(ModelAdmin):
    """All webhooks on one page rather than Django's list and change forms."""

    def get_urls(self) -> list[URLPattern]:
        """The one page: Django's change and delete pages would show or edit the secret."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # the admin's refusal
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied
        actor = actor_of(request)
        action = request.POST.get("action") if request.method == "POST" else None
        context: dict[str, Any] = {}
        try:
            if action == "create":
                form = forms.WebhookForm(request.POST)
                if form.apply(actor) and form.created is not None:
                    # Shown on this answer only: never redirected through.
                    context["new_webhook"] = selectors.webhook(form.created, with_secret=True)
                    messages.success(request, f"Webhook {form.created.url} added.")
                else:
                    context["form"] = form
            elif action == "ping":
                services.ping(actor, _int(request.POST.get("webhook_id")))
                messages.success(request, "PING queued; it shows below once sent.")
                return HttpResponseRedirect(request.path)
            elif action == "delete":
                deleted = services.delete_webhook(actor, _int(request.POST.get("webhook_id")))
                messages.success(request, f"Webhook {deleted.url} deleted.")
                return HttpResponseRedirect(request.path)
        except ServiceError as exc:
            messages.error(request, exc.detail)
        context.setdefault("form", forms.WebhookForm())
        context.update(
            {
                **self.admin_site.each_context(request),
                "title": "Webhooks",
                "retry_hours": f"{settings.SCOUT_WEBHOOK_RETRY_HOURS:g}",
                "opts": self.opts,
                "webhooks": [
                    {
                        **selectors.webhook(hook),
                        "deliveries": selectors.recent_deliveries(hook, DELIVERIES_SHOWN),
                    }
                    for hook in Webhook.objects.all()
                ],
            }
        )
        return TemplateResponse(request, "admin/scout_webhooks/webhooks.html", context)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ServiceError("No such webhook.") from None
