from django.apps import AppConfig


class BanditConfig(AppConfig):
    name = "bandit"
    verbose_name = "Experiments"
    default_auto_field = "django.db.models.BigAutoField"
