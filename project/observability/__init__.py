"""Operating Scout: Prometheus metrics, structured logs and their live stream, health probes."""
