"""The serving baseline: the least a Django + DRF endpoint backed by Redis can do per request.

It parses the same JSON bodies as Scout's fetch and reward endpoints and makes one pipelined
Redis round trip each, so Scout's throughput as a ratio of it measures what Scout's own work
(validation, the snapshot, a Thompson sample, the Lua script) costs on top of the framework.
"""
