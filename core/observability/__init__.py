"""Logging, metrics, the shared log stream and readiness checks: the plumbing every layer uses."""
