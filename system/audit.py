"""The audit log: every change an operator (or a token holder) makes to the system."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from system.models import AuditEntry

logger = logging.getLogger("scout.audit")


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, and from which address."""

    name: str
    address: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


def record(actor: Actor | None, action: str, target: str = "", **details: Any) -> None:
    """Write one audit entry (inside the caller's transaction) and log it at INFO."""
    actor = actor or Actor.system()
    AuditEntry.objects.create(
        actor=actor.name[:150],
        address=actor.address,
        action=action,
        target=target[:255],
        details=details,
    )
    logger.info(
        "Audit: %s %s",
        action,
        target,
        extra={
            "audit_action": action,
            "audit_target": target,
            "user": actor.name,
            "address": actor.address,
            "audit_details": details,
        },
    )
