"""The webhook sender's rules, in this process on the test database: which deliveries a round
takes (one subject's in order, none twice across senders), the retry schedule, giving up, and
the purge. Sending itself is tested over HTTP with real receivers (test_webhooks.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from webhooks import events, sender
from webhooks.models import Delivery, Event, Webhook


@pytest.fixture
def hook(db) -> Webhook:
    return Webhook.objects.create(url="http://127.0.0.1:9/x", events=["PING"], secret="ab" * 32)


def ping(hook: Webhook, subject: str) -> Delivery:
    return events.to(hook, events.PING, {}, subject=subject).deliveries.get()


def test_one_subjects_deliveries_are_taken_one_at_a_time_in_order(hook):
    first, second = ping(hook, "a"), ping(hook, "a")
    other = ping(hook, "b")
    runs = sender.claim(set(), "one")
    assert [d.pk for d in runs[hook.pk]] == [first.pk, other.pk]
    # Failed and waiting for its retry, the first still holds back the second.
    sender.record(runs[hook.pk][0], "one", 500, "HTTP 500")
    sender.release(runs[hook.pk][1:], "one")
    assert [d.pk for d in sender.claim(set(), "two")[hook.pk]] == [other.pk]
    Delivery.objects.filter(pk=first.pk).update(state=Delivery.FAILED)  # given up
    assert [d.pk for d in sender.claim(set(), "three")[hook.pk]] == [second.pk]


def test_a_delivery_claimed_by_one_sender_is_not_taken_by_another_until_its_claim_lapses(hook):
    delivery = ping(hook, "a")
    assert sender.claim(set(), "one")
    assert sender.claim(set(), "two") == {}
    Delivery.objects.filter(pk=delivery.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert [d.pk for d in sender.claim(set(), "two")[hook.pk]] == [delivery.pk]
    # The first sender's late answer is not recorded over the second's claim.
    assert sender.record(delivery, "one", 200, "") is True
    assert Delivery.objects.get(pk=delivery.pk).state == Delivery.PENDING


def test_a_busy_webhook_gets_no_more_and_a_run_is_bounded(hook):
    for i in range(sender.PER_WEBHOOK + 5):
        ping(hook, f"s{i}")
    assert sender.claim({hook.pk}, "one") == {}
    assert len(sender.claim(set(), "one")[hook.pk]) == sender.PER_WEBHOOK


def test_retries_back_off_and_end_in_failure_after_the_retry_period(hook, settings):
    settings.SCOUT_WEBHOOK_FIRST_RETRY_SECONDS = 10.0
    delays = [sender.retry_delay(n) for n in range(1, 12)]
    assert 9 <= delays[0] <= 11 and 18 <= delays[1] <= 22 and 36 <= delays[2] <= 44
    assert max(delays) <= sender.MAX_RETRY_SECONDS * 1.1
    delivery = ping(hook, "a")
    [claimed] = sender.claim(set(), "one")[hook.pk]
    before = timezone.now()
    assert sender.record(claimed, "one", None, "No answer within 5 s.") is False
    again = Delivery.objects.get(pk=delivery.pk)
    assert again.state == Delivery.PENDING and again.attempts == 1
    assert timedelta(seconds=8) < again.next_attempt_at - before < timedelta(seconds=12)

    settings.SCOUT_WEBHOOK_RETRY_HOURS = 1.0
    Event.objects.filter(pk=delivery.event_id).update(time=timezone.now() - timedelta(hours=2))
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    [claimed] = sender.claim(set(), "two")[hook.pk]
    sender.record(claimed, "two", 503, "HTTP 503")
    assert Delivery.objects.get(pk=delivery.pk).state == Delivery.FAILED


def test_an_event_no_webhook_listens_to_is_not_stored_and_one_rolled_back_is_never_sent(hook):
    assert events.emit(events.TEST_CREATED, {}, subject="t") is None
    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit(events.PING, {}, subject="t")
        raise RuntimeError("the change failed")
    assert not Event.objects.exists() and not Delivery.objects.exists()
    with pytest.raises(ValueError):
        events.emit("TEST_EXPLODED", {}, subject="t")


def test_the_purge_keeps_what_is_pending_and_what_is_recent(hook, settings):
    settings.SCOUT_WEBHOOK_KEEP_DAYS = 7.0
    old_done, old_pending, recent_done = ping(hook, "a"), ping(hook, "b"), ping(hook, "c")
    long_ago = timezone.now() - timedelta(days=8)
    Event.objects.filter(pk__in=[old_done.event_id, old_pending.event_id]).update(time=long_ago)
    Delivery.objects.filter(pk__in=[old_done.pk, recent_done.pk]).update(state=Delivery.DELIVERED)
    assert sender.purge() == 1
    assert set(Delivery.objects.values_list("pk", flat=True)) == {old_pending.pk, recent_done.pk}
    assert not Event.objects.filter(pk=old_done.event_id).exists()
