"""Signed webhooks: events written to an outbox with the change that caused them, and sent to
the endpoints that subscribed by a background sender (docs/architecture.md, README "Webhooks")."""
