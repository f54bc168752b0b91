"""The contract's /admin/ system endpoints; each path with or without a trailing slash."""

from django.urls import re_path

from api import system_views as views
from api import webhook_views

WEBHOOK = r"(?P<webhook_id>[^/]+)"

urlpatterns = [
    re_path(r"^get_protection/?$", views.GetProtectionView.as_view(), name="get_protection"),
    re_path(r"^set_protection/?$", views.SetProtectionView.as_view(), name="set_protection"),
    re_path(r"^generate_token/?$", views.GenerateTokenView.as_view(), name="generate_token"),
    re_path(r"^redis_health/?$", views.RedisHealthView.as_view(), name="redis_health"),
    re_path(r"^model_config/?$", views.TestDefaultsView.as_view(), name="model_config"),
    re_path(r"^system_config/?$", views.SystemConfigView.as_view(), name="system_config"),
    re_path(r"^redis_config/?$", views.RedisConfigView.as_view(), name="redis_config"),
    re_path(r"^webhooks/?$", webhook_views.WebhooksView.as_view(), name="webhooks"),
    re_path(
        rf"^webhooks/{WEBHOOK}/delete/?$",
        webhook_views.DeleteWebhookView.as_view(),
        name="delete_webhook",
    ),
    re_path(
        rf"^webhooks/{WEBHOOK}/ping/?$",
        webhook_views.PingWebhookView.as_view(),
        name="ping_webhook",
    ),
    re_path(
        rf"^webhooks/{WEBHOOK}/deliveries/?$",
        webhook_views.WebhookDeliveriesView.as_view(),
        name="webhook_deliveries",
    ),
]
