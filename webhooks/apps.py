from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """The label is not `webhooks`: the console's pages of this app (/admin/<label>/...) must
    not take the path of the staff API's /admin/webhooks."""

    name = "webhooks"
    label = "scout_webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"
