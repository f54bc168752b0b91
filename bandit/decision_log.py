"""The decision log: every decision of every Test (its time, request id, context, variant,
propensity, whether it was a holdout decision and the learning settings in force) and the
reward it earned, kept in the database for SCOUT_DECISION_LOG_DAYS. It is what tells an
operator whether the bandit beats a plain split (`holdout`), and what other policies are
estimated from (bandit.evaluation).

The request path never writes to the database: the decision and reward scripts append each
entry to its Test's stream in Redis in the same atomic step (bandit.state.log). Every
SCOUT_DECISION_LOG_SECONDS one worker of all hosts (a Redis lease decides) moves what the
streams hold into the database, in one transaction per batch of Tests, then trims those
streams. A worker that stops between the two leaves the entries in Redis, and the next round
writes them again harmlessly: each decision and each reward is a row keyed by its entry's id,
unique per Test, and a row written before is left as it is. A round reads only the streams
that workers said they appended to (bandit.state.log), and every stream at least every
SWEEP_SECONDS. So what can be lost is what Redis loses: the entries not moved yet (about two
SCOUT_DECISION_LOG_SECONDS: one for a worker to share what it appended to, one for the round;
up to SWEEP_SECONDS for a worker that stopped before sharing) when Redis loses its data, and,
while the database is down for long, the oldest entries of a Test past
SCOUT_DECISION_LOG_BACKLOG.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from bandit import estimators
from bandit.models import LoggedDecision, LoggedReward, Test, lock_existing
from bandit.state import log
from core import periodic
from core.time import iso

logger = logging.getLogger(__name__)

# Entries read from one Test's stream at a time, and Tests read in one round trip.
BATCH = 2_000
TESTS_PER_READ = 500
# A round keeps reading the streams that had more, for at most this long.
ROUND_SECONDS = 5.0
# A round reads the streams workers said they appended to (bandit.state.log.share_appended),
# and every stream at a worker's first round and at least this often after: a worker that
# stopped before sharing its note leaves entries that only such a sweep finds.
SWEEP_SECONDS = 60.0
# How often rows past the retention period are deleted.
PURGE_SECONDS = 60.0

_purged_at = 0.0
_swept_at = -math.inf


# --- Moving the streams into the database ---------------------------------------------------


def move_all() -> int:
    """Move the logged entries of the Tests that have some from Redis to the database; answer
    how many. Tests with more than a round could move are read first in the next round."""
    global _swept_at
    started = time.monotonic()
    log.share_appended()  # this worker's own, at once
    pending = log.take_appended()
    if started - _swept_at >= SWEEP_SECONDS:
        _swept_at = started
        pending = [str(test_id) for test_id in Test.objects.values_list("id", flat=True)]
    moved = 0
    while pending and time.monotonic() - started < ROUND_SECONDS:
        fuller: list[str] = []
        for at in range(0, len(pending), TESTS_PER_READ):
            found = log.read(pending[at : at + TESTS_PER_READ], BATCH)
            if found:
                moved += _write(found)
                fuller += [test_id for test_id, entries in found.items() if len(entries) == BATCH]
        pending = fuller
    log.mark_appended(pending)
    _purge_if_due()
    return moved


def _write(found: dict[str, list[log.Entry]]) -> int:
    """Write the entries read, then take them out of the streams."""
    with transaction.atomic(), connection.cursor() as cursor:
        tests = {str(test_id): test_id for test_id in lock_existing(list(found))}
        decisions: list[tuple[Any, ...]] = []
        rewards: list[tuple[Any, ...]] = []
        for test_id, entries in found.items():
            if test_id not in tests:  # a Test deleted meanwhile keeps no log
                continue
            test = _TEST_ID.get_db_prep_save(tests[test_id], connection)
            for entry in entries:
                if entry.kind == "d":
                    decisions.append(_decision_row(test, entry))
                elif entry.kind == "r" and entry.fields.get("h"):  # a decision the log holds
                    rewards.append(_reward_row(test, entry))
        if decisions:
            cursor.executemany(_insert(LoggedDecision, _DECISION_COLUMNS), decisions)
        if rewards:
            cursor.executemany(_insert(LoggedReward, _REWARD_COLUMNS), rewards)
    log.trim({test_id: entries[-1].id for test_id, entries in found.items()})
    return sum(len(entries) for entries in found.values())


# Rows are written with one INSERT per batch and no model instances: the log takes every
# decision and reward of every Test, and building a model object per row costs the worker that
# moves them more than the database takes to store them. A row already written (the same entry
# of the same Test) is left as it is.
_TEST_ID = Test._meta.pk
_DECISION_COLUMNS = (
    "test_id",
    "entry",
    "decided_at",
    "request_id",
    "variant_id",
    "propensity",
    "holdout",
    "is_global_rollout",
    "context",
    "learning",
    "ranking",
)
_REWARD_COLUMNS = (
    "test_id",
    "entry",
    "rewarded_at",
    "request_id",
    "variant_id",
    "reward",
    "defaulted",
    "holdout",
    "is_global_rollout",
)


def _insert(model: type[models.Model], columns: Sequence[str]) -> str:
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT (test_id, entry) DO NOTHING"
    )


def _decision_row(test: Any, entry: log.Entry) -> tuple[Any, ...]:
    fields = entry.fields
    return (
        test,
        entry.id,
        _time(entry.at),
        fields["r"],
        int(fields["v"]),
        float(fields["p"]),
        fields.get("h") == "1",
        fields.get("g") == "1",
        fields.get("c") or "{}",
        fields.get("l") or "{}",
        fields.get("rk", ""),
    )


def _reward_row(test: Any, entry: log.Entry) -> tuple[Any, ...]:
    fields = entry.fields
    return (
        test,
        entry.id,
        _time(entry.at),
        fields["r"],
        int(fields["v"]),
        float(fields["y"]),
        fields.get("d") == "1",
        fields["h"] == "1",
        fields["h"] == "g",
    )


def _time(seconds: float) -> Any:
    """A time as the database's driver takes it."""
    return connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(seconds, tz=UTC))


def _purge_if_due() -> None:
    """Delete the rows older than the retention period, once a minute at most."""
    global _purged_at
    if time.monotonic() - _purged_at < PURGE_SECONDS:
        return
    _purged_at = time.monotonic()
    cutoff = timezone.now() - timedelta(days=settings.SCOUT_DECISION_LOG_DAYS)
    deleted, _ = LoggedDecision.objects.filter(decided_at__lt=cutoff).delete()
    LoggedReward.objects.filter(rewarded_at__lt=cutoff).delete()
    if deleted:
        logger.info("Decision log purged", extra={"decisions": deleted, "before": cutoff})


def start_background() -> None:
    """Start this worker's threads that share which Tests it appended to and move the log
    into the database (once per process)."""
    if log.backlog():
        interval = settings.SCOUT_DECISION_LOG_SECONDS
        periodic.start("decision-log-appended", interval, log.share_appended, leased=False)
        periodic.start("decision-log", interval, move_all)


# --- Reading it -----------------------------------------------------------------------------

COLUMNS = (
    "decided_at",
    "request_id",
    "variant_id",
    "variant_label",
    "propensity",
    "holdout",
    "is_global_rollout",
    "context",
    "learning",
    "ranking",
    "reward",
    "rewarded_at",
    "reward_defaulted",
)


def records(test: Test, start: datetime | None, end: datetime | None) -> Iterator[dict[str, Any]]:
    """The Test's logged decisions decided in [start, end), oldest first, each with its
    reward: read from a database cursor a chunk at a time, with the rewards of each chunk in
    one query, so that a log of any size streams in constant memory."""
    rows = LoggedDecision.objects.filter(test=test)
    if start is not None:
        rows = rows.filter(decided_at__gte=start)
    if end is not None:
        rows = rows.filter(decided_at__lt=end)
    decided = rows.order_by("decided_at", "id").values_list(*_DECISION_FIELDS).iterator(CHUNK)
    labels = test.variants
    while chunk := list(islice(decided, CHUNK)):
        rewards = rewards_of(test, chunk)
        for values in chunk:
            decision = dict(zip(_DECISION_FIELDS, values, strict=True))
            reward = rewards.get((decision["request_id"], decision["variant_id"]))
            yield {
                "decided_at": iso(decision["decided_at"], precise=True),
                "request_id": decision["request_id"],
                "variant_id": decision["variant_id"],
                "variant_label": labels.get(str(decision["variant_id"])),
                "propensity": decision["propensity"],
                "holdout": decision["holdout"],
                "is_global_rollout": decision["is_global_rollout"],
                "context": json.loads(decision["context"]),
                "learning": json.loads(decision["learning"]),
                "ranking": [int(v) for v in decision["ranking"].split(",")]
                if decision["ranking"]
                else None,
                "reward": reward[0] if reward else None,
                "rewarded_at": iso(reward[1], precise=True) if reward else None,
                "reward_defaulted": reward[2] if reward else False,
            }


CHUNK = 2_000
_DECISION_FIELDS = (
    "decided_at",
    "request_id",
    "variant_id",
    "propensity",
    "holdout",
    "is_global_rollout",
    "context",
    "learning",
    "ranking",
)


def rewards_of(
    test: Test, chunk: list[tuple[Any, ...]]
) -> dict[tuple[str, int], tuple[float, datetime, bool]]:
    """The first reward of each decision of the chunk, by request id and variant."""
    found: dict[tuple[str, int], tuple[float, datetime, bool]] = {}
    for request_id, variant_id, reward, at, defaulted in (
        LoggedReward.objects.filter(test=test, request_id__in={row[1] for row in chunk})
        .order_by("rewarded_at", "id")
        .values_list("request_id", "variant_id", "reward", "rewarded_at", "defaulted")
    ):
        found.setdefault((request_id, variant_id), (reward, at, defaulted))
    return found


def json_lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def csv_lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV with a header; a context, the learning settings and a ranking are JSON cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(_cell(record[name]) for name in COLUMNS)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _cell(value: object) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if value is None:
        return ""
    return value


# --- What it says about the holdout ---------------------------------------------------------


def holdout(test: Test) -> dict[str, Any]:
    """The mean reward of the holdout's decisions (uniform at random) and of the bandit's,
    each with its 95% interval, and the lift between them, over the rewarded decisions the
    log holds. Rolled-out decisions belong to neither."""
    sums = {True: estimators.Sums(0, 0.0, 0.0), False: estimators.Sums(0, 0.0, 0.0)}
    for row in (
        LoggedReward.objects.filter(test=test, is_global_rollout=False)
        .values("holdout")
        .annotate(n=Count("id"), total=Sum("reward"), squares=Sum(F("reward") * F("reward")))
    ):
        sums[row["holdout"]] = estimators.Sums(row["n"], row["total"], row["squares"])
    holdout_mean = estimators.mean_of_sums(sums[True])
    bandit_mean = estimators.mean_of_sums(sums[False])
    lift = estimators.difference_of_sums(sums[False], sums[True])
    return {
        "holdout_share": test.holdout_share,
        "holdout_rewards": sums[True].count,
        "bandit_rewards": sums[False].count,
        "holdout": holdout_mean.as_dict() if holdout_mean else None,
        "bandit": bandit_mean.as_dict() if bandit_mean else None,
        "lift": lift.as_dict() if lift else None,
        "relative_lift": _relative(lift, holdout_mean),
    }


def _relative(
    lift: estimators.Estimate | None, baseline: estimators.Estimate | None
) -> dict[str, float] | None:
    """The lift as a share of the holdout's mean (its interval scaled alike: the baseline's
    own uncertainty is left out, so read it as a guide)."""
    if lift is None or baseline is None or baseline.value == 0:
        return None
    scale = abs(baseline.value)
    return {"value": lift.value / scale, "low": lift.low / scale, "high": lift.high / scale}


def logged_count(test: Test) -> dict[str, int]:
    """How many decisions and rewards the log holds for the Test."""
    return {
        "decisions": LoggedDecision.objects.filter(test=test).count(),
        "rewarded": LoggedReward.objects.filter(test=test).count(),
    }
