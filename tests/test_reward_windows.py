"""Reward windows: a decision that gets no reward within its Test's window counts once with the
default reward; a reward after the window is late. In this process (services, the closing of
windows, the scripts) and over HTTP against a running server, whose workers close windows in
the background."""

from __future__ import annotations

import random
import threading
import time

import pytest

from bandit import changes, selectors, windows
from bandit.models import Test
from bandit.state import keys, lifecycle, rewards
from system.models import AuditEntry
from tests.conftest import details, fetch, reward
from tests.test_services import OPERATOR, create, decide, entry
from tests.test_services import reward as reward_in_process


def close_until_none_wait(test: Test, seconds: float = 10.0) -> int:
    """Close windows as the background thread does, until no decision of `test` waits."""
    closed = 0
    deadline = time.monotonic() + seconds
    while selectors.details(str(test.id))["decisions_awaiting_reward"]:
        assert time.monotonic() < deadline, "decisions still wait"
        closed += windows.close_due()
        time.sleep(0.05)
    return closed


def summary(test: Test, variant: int) -> dict:
    return selectors.details(str(test.id))["performance_summary"][str(variant)]


@pytest.mark.usefixtures("in_process")
def test_off_by_default_a_decision_without_reward_never_counts():
    test = create()
    decide(test, "r-1")
    assert windows.close_due() == 0
    info = selectors.details(str(test.id))
    assert info["reward_window_seconds"] is None and info["default_reward"] == 0.0
    assert info["total_updates"] == 0 and info["decisions_awaiting_reward"] == 0


@pytest.mark.usefixtures("in_process")
def test_a_silent_decision_counts_the_default_once_and_a_rewarded_one_its_reward():
    test = create(reward_window_seconds=1, default_reward=0.25)
    silent = decide(test, "silent", plan="pro")
    rewarded = decide(test, "rewarded", plan="pro")
    assert windows.close_due() == 0  # nothing is due yet
    report = reward_in_process(test, entry(0, 1.0, request_id="rewarded"))
    assert report.processed == 1
    time.sleep(1.1)
    assert close_until_none_wait(test) == 1
    assert windows.close_due() == 0  # closed once
    info = selectors.details(str(test.id))
    assert info["total_updates"] == 2
    by_variant = info["performance_summary"]
    assert sum(v["default_rewards"] for v in by_variant.values()) == 1
    assert by_variant[str(silent.variant_id)]["default_rewards"] == 1
    total = sum(v["reward_sum"] for v in by_variant.values())
    assert total == pytest.approx(1.25)
    # The default taught the decision's context too, as a reward would have.
    analysis = info["context_feature_analysis"]
    assert "plan" in str(analysis)
    assert rewarded.variant_id in (0, 1)


@pytest.mark.usefixtures("in_process")
def test_a_reward_after_the_window_is_late_whether_or_not_the_window_was_closed_yet():
    test = create(reward_window_seconds=1, default_reward=0.0)
    decide(test, "a")
    decide(test, "b")
    time.sleep(1.1)
    # "a": its window closed but no worker closed it yet; the reward is late all the same.
    report = reward_in_process(test, entry(0, 1.0, request_id="a"))
    assert report.processed == 0
    assert "closed before this reward came" in report.errors[0]["reason"]
    assert close_until_none_wait(test) == 2
    # "b": closed with the default first; its reward, and a retry, are late too.
    for _ in range(2):
        report = reward_in_process(test, entry(0, 1.0, request_id="b"))
        assert report.processed == 0 and "closed before" in report.errors[0]["reason"]
    info = selectors.details(str(test.id))
    assert info["total_updates"] == 2
    assert sum(v["reward_sum"] for v in info["performance_summary"].values()) == 0.0


@pytest.mark.usefixtures("in_process")
def test_a_decision_whose_context_expired_still_counts_the_default(in_process):
    test = create(reward_window_seconds=1, default_reward=1.0)
    made = decide(test, "gone")
    in_process.delete(keys.context(str(test.id), "gone"))  # evicted, say
    time.sleep(1.1)
    assert close_until_none_wait(test) == 1
    assert summary(test, made.variant_id)["updates"] == 1
    report = reward_in_process(test, entry(0, 1.0, request_id="gone"))
    assert report.processed == 0 and "closed before" in report.errors[0]["reason"]


@pytest.mark.usefixtures("in_process")
def test_changing_the_window_holds_from_the_next_decision_and_off_still_closes_what_waits():
    test = create()
    decide(test, "before")  # made with no window: never defaulted
    changed = changes.set_reward_window(str(test.id), seconds=1, default_reward=0.5, actor=OPERATOR)
    assert changed.reward_window_seconds == 1
    entry_row = AuditEntry.objects.filter(action="reward_window_set").latest("at")
    assert entry_row.details == {"reward_window_seconds": 1, "default_reward": 0.5}
    decide(test, "while-on")
    changes.set_reward_window(str(test.id), seconds=None, default_reward=0.5, actor=OPERATOR)
    decide(test, "after-off")
    assert selectors.details(str(test.id))["decisions_awaiting_reward"] == 1
    time.sleep(1.1)
    assert close_until_none_wait(test) == 1
    info = selectors.details(str(test.id))
    assert info["total_updates"] == 1 and info["reward_window_seconds"] is None
    assert sum(v["reward_sum"] for v in info["performance_summary"].values()) == 0.5


@pytest.mark.usefixtures("in_process")
def test_every_decision_counts_exactly_once_when_rewards_race_the_closing_of_windows():
    """Rewards sent from several threads while several closers close the same windows: each
    decision counts its reward or the default, never both, never neither."""
    window = 2
    test = create(reward_window_seconds=window, default_reward=0.0)
    n = 300
    first = time.monotonic()
    for i in range(n):
        decide(test, f"d-{i}")
    spread = time.monotonic() - first  # the windows close over as long as the deciding took
    # The rewards, in the order of the decisions, begin shortly before the first window closes
    # and go on past the last one, however fast this machine decides.
    pace = max(0.006, (spread + 0.4) / (n / 6))
    begin = first + window - 0.15
    assert begin > time.monotonic(), f"deciding took {spread:.2f} s, longer than the window"
    closers_until = begin + 0.5 + spread + window
    answered: list[int] = []
    late: list[int] = []
    defaulted: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def send(start: int) -> None:
        # Rewards for every other decision, spread across the moment the windows close.
        try:
            time.sleep(max(0.0, begin - time.monotonic()))
            for i in range(start, n, 6):
                report = reward_in_process(test, entry(0, 1.0, request_id=f"d-{i}"))
                with lock:
                    answered.extend([i] * report.processed)
                    late.extend([i] * len(report.errors))
                time.sleep(pace)
        except BaseException as exc:
            failures.append(exc)

    def close() -> None:
        # Each closer as a worker of its own would: every one sees every due window.
        try:
            while time.monotonic() < closers_until:
                closed = windows.close_test(test)
                with lock:
                    defaulted.append(closed)
                time.sleep(0.002)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(s,)) for s in (0, 2, 4)]
    threads += [threading.Thread(target=close) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert close_until_none_wait(test) == 0  # the closers closed every window
    assert answered and late, "the race did not straddle the windows' close"
    assert sum(defaulted) == n - len(answered)  # each default reported by one closer
    assert not set(answered) & set(late)
    info = selectors.details(str(test.id))
    defaults = sum(v["default_rewards"] for v in info["performance_summary"].values())
    assert info["total_updates"] == n
    assert defaults == n - len(answered)
    assert sum(v["reward_sum"] for v in info["performance_summary"].values()) == len(answered)
    assert info["decisions_awaiting_reward"] == 0


@pytest.mark.usefixtures("in_process")
def test_a_redis_that_lost_the_test_gets_its_window_back_from_the_database():
    test = create(reward_window_seconds=1, default_reward=0.5)
    lifecycle.delete_test(str(test.id))  # Redis lost everything of the Test
    decide(test, "after-the-loss")  # the decision refills the Test from the database
    assert selectors.details(str(test.id))["decisions_awaiting_reward"] == 1
    windows._looked.clear()  # a worker that starts afresh knows nothing: it looks again
    time.sleep(1.1)
    assert close_until_none_wait(test) == 1
    assert selectors.details(str(test.id))["total_updates"] == 1


@pytest.mark.usefixtures("in_process")
def test_the_closing_looks_only_at_tests_whose_first_window_is_due(monkeypatch):
    quiet = create(reward_window_seconds=3600)
    decide(quiet, "waits-an-hour")
    looked: list[str] = []
    original = rewards.due_decisions

    def spy(test_id: str, limit: int):
        looked.append(test_id)
        return original(test_id, limit)

    monkeypatch.setattr(rewards, "due_decisions", spy)
    windows.close_due()
    windows.close_due()
    assert looked.count(str(quiet.id)) <= 1  # the second round knows nothing is due for an hour


# --- Over HTTP ------------------------------------------------------------------------------


def wait_for(check, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_over_http_the_servers_workers_close_windows_with_the_default(api, make_test):
    created = make_test(reward_window_seconds=1, default_reward=0.0)
    test_id = created["cb_model_id"]
    info = details(api, test_id)
    assert info["reward_window_seconds"] == 1 and info["default_reward"] == 0.0
    for i in range(10):
        fetch(api, test_id, request_id=f"visit-{i}")
    converted = reward(api, test_id, {"request_id": "visit-0", "reward": 1})
    assert converted["processed_updates"] == 1
    closed = wait_for(lambda: (d := details(api, test_id))["total_updates"] == 10 and d)
    assert closed["decisions_awaiting_reward"] == 0
    by_variant = closed["performance_summary"].values()
    assert sum(v["default_rewards"] for v in by_variant) == 9
    assert sum(v["reward_sum"] for v in by_variant) == 1.0
    late = reward(api, test_id, {"request_id": "visit-5", "reward": 1})
    assert late["processed_updates"] == 0 and late["failed_updates"] == 1
    assert "reward window" in late["errors"][0]["reason"]
    assert details(api, test_id)["total_updates"] == 10


def test_over_http_rewards_racing_the_close_count_exactly_once(server, api, make_test):
    """Rewards sent from several clients while the server's workers close the same windows:
    each decision counts its reward or the default, and the totals say so exactly."""
    test_id = make_test(reward_window_seconds=1, default_reward=0.0)["cb_model_id"]
    n = 120
    made = []
    for i in range(n):
        fetch(api, test_id, request_id=f"d-{i}")
        made.append(time.monotonic())
    counted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()
    # Each reward is sent about when its decision's window closes: some just before, some
    # just after, whatever the speed of the machine.
    jitter = random.Random(7)
    send_at = [at + 1.0 + jitter.uniform(-0.2, 0.2) for at in made]

    def send(start: int) -> None:
        with server.client() as client:
            for i in sorted(range(start, n, 4), key=lambda i: send_at[i]):
                time.sleep(max(0.0, send_at[i] - time.monotonic()))
                answer = reward(client, test_id, {"request_id": f"d-{i}", "reward": 1})
                with lock:
                    counted.extend([i] * answer["processed_updates"])
                    refused.extend([i] * answer["failed_updates"])

    threads = [threading.Thread(target=send, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counted and refused, "the rewards did not straddle the windows' close"
    assert len(counted) + len(refused) == n and not set(counted) & set(refused)
    closed = wait_for(lambda: (d := details(api, test_id))["decisions_awaiting_reward"] == 0 and d)
    by_variant = closed["performance_summary"].values()
    assert closed["total_updates"] == n
    assert sum(v["default_rewards"] for v in by_variant) == n - len(counted)
    assert sum(v["reward_sum"] for v in by_variant) == len(counted)


def test_over_http_without_a_window_nothing_changes(api, make_test):
    test_id = make_test()["cb_model_id"]
    fetch(api, test_id, request_id="r")
    info = details(api, test_id)
    assert info["reward_window_seconds"] is None and info["decisions_awaiting_reward"] == 0
    time.sleep(1.5)
    assert details(api, test_id)["total_updates"] == 0


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("reward_window_seconds", 0, "between 1 and 2592000"),
        ("reward_window_seconds", -5, "between 1 and 2592000"),
        ("reward_window_seconds", 2592001, "between 1 and 2592000"),
        ("reward_window_seconds", 1.5, "integer"),
        ("reward_window_seconds", "60", "integer"),
        ("reward_window_seconds", True, "integer"),
        ("default_reward", "0", "finite number"),
        ("default_reward", None, "null"),
        ("default_reward", 1e13, "magnitude"),
        ("default_reward", False, "finite number"),
    ],
)
def test_bad_window_settings_are_refused_and_create_nothing(api, field, value, says):
    before = len(api.get("/api/models").json())
    response = api.post(
        "/api/create_model",
        json={"name": "Windowed", "variants": {"0": "A", "1": "B"}, field: value},
    )
    assert response.status_code == 400, response.text
    assert field in response.text and says in response.text.replace("\\", "")
    assert len(api.get("/api/models").json()) == before
