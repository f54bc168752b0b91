"""The HTTP API: the contract's `/api/` and `/admin/` endpoints and the operator endpoints
(`/metrics`, `/healthz`, `/readyz`, `/logs/stream`). Views check input with their serializers,
let callers in (access), call one service and shape the answer; errors are JSON (errors)."""
