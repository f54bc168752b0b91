"""Migrations that change how existing Tests learn keep them learning as they did."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_PRIOR = [("bandit", "0003_sampling")]
WITH_PRIOR = [("bandit", "0004_prior")]


@pytest.mark.django_db(transaction=True)
def test_tests_that_exist_keep_the_flat_prior_and_their_sampling():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_PRIOR)
    try:
        old_test = executor.loader.project_state(BEFORE_PRIOR).apps.get_model("bandit", "Test")
        existing = old_test.objects.create(
            id=uuid.uuid4(),
            name="Existing",
            variants={"0": "a", "1": "b"},
            trail_time_window_minutes=60,
            trail_bucket_granularity_seconds=60,
            minimum_update_requests=50,
            sampling="optimistic",
        )
        executor = MigrationExecutor(connection)
        executor.migrate(WITH_PRIOR)
        new_test = executor.loader.project_state(WITH_PRIOR).apps.get_model("bandit", "Test")
        migrated = new_test.objects.get(id=existing.id)
        assert (migrated.prior, migrated.sampling) == ("flat", "optimistic")
        fresh = new_test.objects.create(
            name="New",
            variants={"0": "a", "1": "b"},
            trail_time_window_minutes=60,
            trail_bucket_granularity_seconds=60,
            minimum_update_requests=50,
        )
        assert (fresh.prior, fresh.sampling) == ("pooled", "focused")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
