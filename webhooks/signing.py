"""What a receiver gets: the event as JSON, and its signature (the fleet API's scheme).

`Scout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`.
The Python client checks it (scout_client.validate_webhook_payload).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from core.time import iso
from webhooks.models import Event

HEADER = "Scout-Signature"


def new_secret() -> str:
    """64 hex characters (256 bits)."""
    return secrets.token_hex(32)


def body_of(event: Event) -> bytes:
    moment = iso(event.time)
    payload = {"uuid": str(event.uuid), "type": event.type, "time": moment, "data": event.data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
