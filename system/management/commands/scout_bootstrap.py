"""Apply the start-up settings that live in the database (admin user, protection, token)."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import InvalidInput
from system.services import bootstrap_from_environment


class Command(BaseCommand):
    help = "Apply SCOUT_ADMIN_USER/PASSWORD, SCOUT_PROTECTED_API and SCOUT_API_TOKEN."

    def handle(self, *args: object, **options: object) -> None:
        try:
            for line in bootstrap_from_environment():
                self.stderr.write(f"scout: {line}")
        except InvalidInput as exc:
            raise CommandError(exc.detail) from None
