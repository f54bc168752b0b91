from django.apps import AppConfig


class SystemAppConfig(AppConfig):
    """The operator's configuration, API tokens and audit log.

    The label stays `adminapi`, the app's first name, so that existing databases (tables,
    migrations) and the console's URLs (`/admin/adminapi/...`) stay as they are.
    """

    name = "system"
    label = "adminapi"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"
