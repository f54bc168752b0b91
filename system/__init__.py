"""System administration: API protection, tokens, configuration, Redis, and the audit log."""
