"""Manage API tokens from the command line: `scout manage scout_token create|list|revoke`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.errors import ServiceError
from system import services
from system.audit import Actor
from system.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke named API tokens (a new token is printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create")
        create.add_argument("name")
        create.add_argument("--expires-in", type=int, help="seconds until the token expires")
        actions.add_parser("list")
        revoke = actions.add_parser("revoke")
        revoke.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor("command-line")
        try:
            if options["action"] == "create":
                expires = None
                if options["expires_in"] is not None:
                    expires = timezone.now() + dt.timedelta(seconds=options["expires_in"])
                token, raw = services.create_token(
                    actor, name=str(options["name"]), expires_at=expires
                )
                self.stdout.write(f"{token.pk} {raw}")
            elif options["action"] == "revoke":
                services.revoke_token(actor, int(options["id"]))
            else:
                for token in ApiToken.objects.all():
                    state = "active" if token.is_active else "inactive"
                    self.stdout.write(f"{token.pk}\t{token.name}\t{token.masked}\t{state}")
        except ServiceError as exc:
            raise CommandError(exc.detail) from None
