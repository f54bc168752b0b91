"""Scout's benchmarks: serving throughput and latency against a minimal baseline, memory
footprints, and decision quality against reference bandit libraries. `bash benchmarks/run`."""
