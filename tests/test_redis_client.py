"""The Redis client of a request thread: one connection of its own, that follows the process
to another Redis (an operator's switch) and outlives a Redis restart."""

from __future__ import annotations

import threading
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django.conf import settings

from bandit.state import decisions, keys, lifecycle
from core import redis_client
from tests.live import redis_at

pytestmark = pytest.mark.skipif(
    settings.SCOUT_REDIS_CLUSTER,
    reason="on a Redis Cluster every thread uses the cluster client, which routes by slot",
)


def decide(test_id: str) -> None:
    decisions.record_decision(
        test_id,
        guard=None,
        variant_id=0,
        exploit=True,
        propensity=0.5,
        holdout=False,
        request_id="visit-1",
        context={},
        learning="{}",
        context_keys=[],
        features={},
        context_ttl_seconds=60,
        trail_window_seconds=60,
        trail_granularity_seconds=60,
    )


def another_database(url: str) -> str:
    """The same Redis server, another numbered database (the keys stay under this test's own
    prefix, and are removed)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix":  # the database is a query parameter
        other = "2" if query.get("db") == "1" else "1"
        return f"{url.partition('?')[0]}?{urlencode({**query, 'db': other})}"
    other = "2" if parts.path.strip("/") == "1" else "1"  # the database is the path
    return urlunsplit(parts._replace(path=f"/{other}"))


def test_a_thread_keeps_one_connection_of_its_own(in_process):
    first = redis_client.for_this_thread()
    assert redis_client.for_this_thread() is first
    others: list = []
    worker = threading.Thread(target=lambda: others.append(redis_client.for_this_thread()))
    worker.start()
    worker.join()
    assert others[0] is not first
    assert others[0].connection is not first.connection
    # Both draw on the process's pool, so a switch of Redis reaches them (next test).
    assert first.connection_pool is redis_client.connection().connection_pool
    test_id = str(uuid.uuid4())
    lifecycle.create_test(test_id)
    decide(test_id)  # a script, on this thread's connection
    assert in_process.hget(keys.stats(test_id), "n") == "1"


def test_a_switch_to_another_redis_reaches_the_threads_client(in_process):
    url = settings.REDIS_URL
    before = redis_client.for_this_thread()
    other_url = another_database(url)
    other = redis_at(other_url, decode_responses=True)
    test_id = str(uuid.uuid4())
    try:
        redis_client.use_redis(other_url)
        assert redis_client.for_this_thread() is not before
        lifecycle.create_test(test_id)
        decide(test_id)
        assert other.hget(keys.stats(test_id), "n") == "1"
        assert not in_process.exists(keys.stats(test_id))
    finally:
        for key in other.scan_iter(match=f"{keys.tag(test_id)}:*"):
            other.delete(key)
        other.close()
        redis_client.use_redis(url)
