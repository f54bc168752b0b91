"""Django's admin finds the console's pages here: the Tests pages and the system pages."""

from console import system_admin, tests_admin, webhooks_admin  # noqa: F401 - each registers its pages
