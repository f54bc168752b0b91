"""Migrations that change how existing Tests learn keep them learning as they did."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SETTINGS = {
    "variants": {"0": "a", "1": "b"},
    "trail_time_window_minutes": 60,
    "trail_bucket_granularity_seconds": 60,
    "minimum_update_requests": 50,
}


def migrated(before: str, after: str, **existing_fields: Any) -> tuple[Any, Any]:
    """A Test stored at migration `before`, as it reads after migrating to `after`, and a Test
    created after it with the defaults; the database ends on the latest migration."""
    executor = MigrationExecutor(connection)
    executor.migrate([("bandit", before)])
    try:
        old_test = executor.loader.project_state([("bandit", before)]).apps.get_model(
            "bandit", "Test"
        )
        existing = old_test.objects.create(
            id=uuid.uuid4(), name="Existing", **SETTINGS, **existing_fields
        )
        executor = MigrationExecutor(connection)
        executor.migrate([("bandit", after)])
        new_test = executor.loader.project_state([("bandit", after)]).apps.get_model(
            "bandit", "Test"
        )
        return new_test.objects.get(id=existing.id), new_test.objects.create(name="New", **SETTINGS)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_tests_that_exist_keep_the_flat_prior_and_their_sampling():
    existing, fresh = migrated("0003_sampling", "0004_prior", sampling="optimistic")
    assert (existing.prior, existing.sampling) == ("flat", "optimistic")
    assert (fresh.prior, fresh.sampling) == ("pooled", "focused")


@pytest.mark.django_db(transaction=True)
def test_tests_that_exist_never_forget_and_new_ones_forget_on_a_change():
    existing, fresh = migrated("0004_prior", "0005_forgetting")
    assert (existing.forgetting, fresh.forgetting) == ("never", "on_change")
