"""The decision log: every decision of every Test (its time, request id, context, variant,
propensity, whether it was a holdout decision and the learning settings in force) and the
reward it earned, kept in the database for SCOUT_DECISION_LOG_DAYS. It is what tells an
operator whether the bandit beats a plain split (`holdout`), and what other policies are
estimated from (bandit.evaluation).

The request path never writes to the database: the decision and reward scripts append each
entry to its Test's stream in Redis in the same atomic step (bandit.state.log). Every
SCOUT_DECISION_LOG_SECONDS one worker of all hosts (a Redis lease decides) moves what the
streams hold into the database in one transaction per round, then trims the streams. A worker
that stops between the two leaves the entries in Redis, and the next round writes them again
harmlessly: an entry's id is unique per Test, and a reward is set only where none is. So what
can be lost is what Redis loses: the entries not moved yet (about SCOUT_DECISION_LOG_SECONDS)
when Redis loses its data, and, while the database is down for long, the oldest entries of a
Test past SCOUT_DECISION_LOG_BACKLOG.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from bandit import estimators
from bandit.models import LoggedDecision, Test
from bandit.state import log
from core import periodic

logger = logging.getLogger(__name__)

# Entries read from one Test's stream at a time, and Tests read in one round trip.
BATCH = 2_000
TESTS_PER_READ = 500
# A round keeps reading the streams that had more, for at most this long.
ROUND_SECONDS = 5.0
# How often rows past the retention period are deleted.
PURGE_SECONDS = 60.0

_purged_at = 0.0


# --- Moving the streams into the database ---------------------------------------------------


def move_all() -> int:
    """Move every Test's logged entries from Redis to the database; answer how many."""
    started = time.monotonic()
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
    _purge_if_due()
    return moved


def _write(found: dict[str, list[log.Entry]]) -> int:
    """Write the entries read, then take them out of the streams."""
    known = {
        str(test_id)
        for test_id in Test.objects.filter(pk__in=list(found)).values_list("id", flat=True)
    }
    with transaction.atomic():
        for test_id, entries in found.items():
            if test_id in known:  # a Test deleted meanwhile keeps no log
                _write_test(test_id, entries)
    log.trim({test_id: entries[-1].id for test_id, entries in found.items()})
    return sum(len(entries) for entries in found.values())


def _write_test(test_id: str, entries: Sequence[log.Entry]) -> None:
    LoggedDecision.objects.bulk_create(
        [_decision(test_id, entry) for entry in entries if entry.kind == "d"],
        ignore_conflicts=True,
        batch_size=500,
    )
    rewards = [entry for entry in entries if entry.kind == "r"]
    if not rewards:
        return
    waiting: dict[str, list[LoggedDecision]] = {}
    for row in LoggedDecision.objects.filter(
        test_id=test_id,
        request_id__in={entry.fields["r"] for entry in rewards},
        reward__isnull=True,
    ).order_by("decided_at"):
        waiting.setdefault(row.request_id, []).append(row)
    rewarded = []
    for entry in rewards:
        decision = _decision_rewarded(waiting.get(entry.fields["r"], []), entry)
        if decision is not None:
            decision.reward = float(entry.fields["y"])
            decision.rewarded_at = _time(entry.at)
            decision.reward_defaulted = entry.fields.get("d") == "1"
            rewarded.append(decision)
    LoggedDecision.objects.bulk_update(
        rewarded, ["reward", "rewarded_at", "reward_defaulted"], batch_size=500
    )


def _decision_rewarded(rows: list[LoggedDecision], entry: log.Entry) -> LoggedDecision | None:
    """The latest decision of the request id made before its reward, of the variant the
    reward is for (a ranked decision keeps the reward of its first variant), not rewarded
    yet. None when the log does not hold it (made before the log was on, or dropped)."""
    variant = int(entry.fields["v"])
    for row in reversed(rows):
        if row.reward is None and row.variant_id == variant and row.decided_at <= _time(entry.at):
            return row
    return None


def _decision(test_id: str, entry: log.Entry) -> LoggedDecision:
    fields = entry.fields
    ranking = fields.get("rk", "")
    return LoggedDecision(
        test_id=test_id,
        entry=entry.id,
        decided_at=_time(entry.at),
        request_id=fields["r"],
        variant_id=int(fields["v"]),
        propensity=float(fields["p"]),
        holdout=fields.get("h") == "1",
        is_global_rollout=fields.get("g") == "1",
        context=json.loads(fields.get("c") or "{}"),
        learning=json.loads(fields.get("l") or "{}"),
        ranking=[int(variant) for variant in ranking.split(",")] if ranking else None,
    )


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _purge_if_due() -> None:
    """Delete the rows older than the retention period, once a minute at most."""
    global _purged_at
    if time.monotonic() - _purged_at < PURGE_SECONDS:
        return
    _purged_at = time.monotonic()
    cutoff = timezone.now() - timedelta(days=settings.SCOUT_DECISION_LOG_DAYS)
    deleted, _ = LoggedDecision.objects.filter(decided_at__lt=cutoff).delete()
    if deleted:
        logger.info("Decision log purged", extra={"decisions": deleted, "before": cutoff})


def start_background() -> None:
    """Start this worker's thread that moves the log into the database (once per process)."""
    if log.backlog():
        periodic.start("decision-log", settings.SCOUT_DECISION_LOG_SECONDS, move_all)


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
_FIELDS = tuple(name for name in COLUMNS if name != "variant_label")


def records(test: Test, start: datetime | None, end: datetime | None) -> Iterator[dict[str, Any]]:
    """The Test's logged decisions decided in [start, end), oldest first, one at a time from
    a database cursor: a log of any size streams in constant memory."""
    rows = LoggedDecision.objects.filter(test=test)
    if start is not None:
        rows = rows.filter(decided_at__gte=start)
    if end is not None:
        rows = rows.filter(decided_at__lt=end)
    labels = test.variants
    for values in rows.order_by("decided_at", "id").values_list(*_FIELDS).iterator(2_000):
        record = dict(zip(_FIELDS, values, strict=True))
        record["variant_label"] = labels.get(str(record["variant_id"]))
        for name in ("decided_at", "rewarded_at"):
            if record[name] is not None:
                record[name] = record[name].astimezone(UTC).isoformat().replace("+00:00", "Z")
        yield {name: record[name] for name in COLUMNS}


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
        LoggedDecision.objects.filter(test=test, reward__isnull=False, is_global_rollout=False)
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
    """How many decisions the log holds for the Test, and how many of them were rewarded."""
    return LoggedDecision.objects.filter(test=test).aggregate(
        decisions=Count("id"), rewarded=Count("id", filter=Q(reward__isnull=False))
    )
