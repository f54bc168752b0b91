"""Metric writes queued off the request path (core.observability.metrics): once written, a
counter and a histogram hold exactly what writing each value at once would have given."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from core.observability import metrics

BUCKETS = (0, 0.5, 1, 5)


def pair(name: str) -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter(f"{name}_things", "Things.", ["kind"], registry=registry)
    histogram = Histogram(f"{name}_sizes", "Sizes.", ["kind"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


def samples(registry: CollectorRegistry, name: str) -> dict:
    return {
        (sample.name.removeprefix(name), tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


VALUES = [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 3.0, 5.0, 7.5, 100.0]


@pytest.fixture
def queuing(monkeypatch):
    monkeypatch.setattr(metrics, "_queuing", True)


def test_queued_writes_add_up_to_the_writes_made_at_once(queuing):
    direct, direct_counter, direct_histogram = pair("direct")
    queued, queued_counter, queued_histogram = pair("queued")
    for value in VALUES:
        direct_counter.labels("a").inc(value)
        direct_histogram.labels("a").observe(value)
        metrics.count(queued_counter, "a", amount=value)
        metrics.observe(queued_histogram, value, "a")
    direct_counter.labels("b").inc()
    metrics.count(queued_counter, "b")
    assert samples(queued, "queued") == {}  # nothing written yet
    assert metrics.write_queued() == 2 * len(VALUES) + 1
    assert samples(queued, "queued") == samples(direct, "direct")
    assert metrics.write_queued() == 0  # each write is made once


def test_writes_queued_by_many_threads_are_all_made(queuing):
    registry, counter, histogram = pair("threads")

    def work() -> None:
        for value in VALUES * 100:
            metrics.count(counter, "a")
            metrics.observe(histogram, value, "a")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    written = 0
    while any(thread.is_alive() for thread in threads):
        written += metrics.write_queued()  # as the writer thread does, meanwhile
    for thread in threads:
        thread.join()
    written += metrics.write_queued()
    total = 8 * 100 * len(VALUES)
    assert written == 2 * total
    assert registry.get_sample_value("threads_things_total", {"kind": "a"}) == total
    assert registry.get_sample_value("threads_sizes_count", {"kind": "a"}) == total
    assert registry.get_sample_value("threads_sizes_sum", {"kind": "a"}) == pytest.approx(
        8 * 100 * sum(VALUES)
    )
    # 0, 0.25, 0.5 are within 0.5: three of ten in each thread's values.
    assert registry.get_sample_value("threads_sizes_bucket", {"kind": "a", "le": "0.5"}) == (
        8 * 100 * 3
    )


def test_without_the_writer_a_write_is_made_at_once():
    registry, counter, _ = pair("now")
    metrics.count(counter, "a", amount=2)
    assert registry.get_sample_value("now_things_total", {"kind": "a"}) == 2
