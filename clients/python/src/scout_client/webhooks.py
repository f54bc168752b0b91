"""Checking that a webhook request comes from Scout, and is not a replay.

Scout signs each webhook request it sends with the webhook's secret: the header

    Scout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

A receiver recomputes the HMAC over the exact bytes it received (not over JSON it decoded and
encoded again, which would not be byte-for-byte the same) and compares in constant time. The
timestamp is inside the signed text, so a captured request cannot be given a fresh one:
refusing timestamps further than a tolerance from now refuses replays of old requests.

Several `v1` values may appear (a sender signing with an old and a new secret while a secret
is rotated): any one that matches will do. Keys other than `t` and `v1` are ignored, so that
a later signature scheme can be added beside this one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Scout-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookSignatureError(ValueError):
    """The request is not a valid, recent Scout webhook request; the message says why.
    Answer it with a 4xx and do not act on it."""


def _signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_webhook_payload(secret: str, body: bytes | str, timestamp: int | None = None) -> str:
    """The `Scout-Signature` header Scout sends for `body` at `timestamp` (now by default):
    for testing a receiver without a running Scout."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_signature(secret, moment, raw)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key:
            raise WebhookSignatureError(
                f"Malformed {SIGNATURE_HEADER} header: {part.strip()!r} is not key=value."
            )
        if key == "t":
            if not value.isascii() or not value.isdigit():
                raise WebhookSignatureError(
                    f"Malformed {SIGNATURE_HEADER} header: t={value!r} is not unix seconds."
                )
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None:
        raise WebhookSignatureError(f"The {SIGNATURE_HEADER} header has no timestamp (t=).")
    if not signatures:
        raise WebhookSignatureError(f"The {SIGNATURE_HEADER} header has no v1 signature.")
    return timestamp, signatures


def validate_webhook_payload(
    secret: str,
    signature_header: str | None,
    body: bytes | str,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook request and answer its decoded payload: `uuid`, `type` (the event),
    `time` (ISO 8601, UTC) and `data`. Raises WebhookSignatureError when the header is missing
    or malformed, no signature matches, or the timestamp is more than `tolerance_seconds` from
    `now` (in the past: a replay; in the future: a wrong clock).

    Pass the raw request body as bytes when you can; a str is encoded as UTF-8, which gives
    back the bytes Scout sent only if it was decoded from them as UTF-8.
    """
    if not signature_header:
        raise WebhookSignatureError(f"The request has no {SIGNATURE_HEADER} header.")
    timestamp, signatures = _parse(signature_header)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    expected = _signature(secret, timestamp, raw).encode()
    # Every candidate is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in signatures]
    if not any(matches):
        raise WebhookSignatureError(
            "No signature matches: the body was changed, or the secret is not this webhook's."
        )
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance_seconds:
        raise WebhookSignatureError(
            f"The signature is {age:.0f} s old, more than the {tolerance_seconds:g} s "
            "tolerated: a replayed request."
        )
    if age < -tolerance_seconds:
        raise WebhookSignatureError(
            f"The signature's time is {-age:.0f} s in the future, more than the "
            f"{tolerance_seconds:g} s tolerated: check the clocks."
        )
    try:
        payload = json.loads(raw)
    except ValueError:
        raise WebhookSignatureError("The signed body is not JSON.") from None
    if not isinstance(payload, dict):
        raise WebhookSignatureError("The signed body is not a JSON object.")
    return payload
