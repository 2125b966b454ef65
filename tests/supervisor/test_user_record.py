"""A user's record moves only through its own methods, each with its precondition (no
processes: a ``Child`` stands for a forked process that is never started)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config.settings import EffectiveSettings
from protocol import messages as m
from protocol.exitcodes import Exit
from supervisor.restart import RestartPolicy
from supervisor.spawn import Child
from supervisor.states import IllegalTransition, State
from supervisor.user_record import UserRecord
from supervisor.volumes import VolumeResult


def record(*sids: str) -> UserRecord:
    settings = [
        EffectiveSettings(
            strategy_id=sid,
            strategy_name=sid,
            user_id="1",
            target_token="KOGE",
            target_volume=Decimal(100),
        )
        for sid in sids or ("s1",)
    ]
    return UserRecord.create("1", settings, RestartPolicy(initial_delay=1))


def running(rec: UserRecord) -> Child:
    rec.checked = True
    rec.spawning(at=0)
    child = Child(user_id="1", process=None, pid=4242, started=0)
    rec.spawned(child, mono=0)
    assert rec.hello(4242, at=0) == []
    return child


def test_a_repeated_drain_is_the_same_drain_and_only_now_escalates():
    rec = record()
    running(rec)
    assert rec.stop(now=False, reason="r", at=1, mono=1) == m.Drain()
    assert rec.stop(now=False, reason="r", at=2, mono=2) is None  # the same drain
    assert rec.state == State.STOPPING
    assert rec.stop(now=True, reason="r", at=3, mono=3) == m.StopNow()
    assert rec.stop(now=True, reason="r", at=4, mono=4) is None
    assert rec.stop(now=False, reason="r", at=5, mono=5) is None  # no way back to a drain
    assert rec.stop_command == m.StopNow()
    assert [t.edge for t in rec.sm.history] == ["spawn", "hello", "stop", "stop_harder"]


def test_a_stop_before_hello_is_repeated_on_hello():
    rec = record()
    rec.checked = True
    rec.spawning(at=0)
    assert rec.stop(now=False, reason="r", at=1, mono=1) == m.Drain()
    rec.spawned(Child(user_id="1", process=None, pid=7, started=0), mono=1)
    assert rec.hello(7, at=2) == [m.Drain()]
    assert rec.state == State.STOPPING


def test_a_hello_read_before_the_fork_returned_is_fine():
    # the child can say Hello while the fork's worker thread is still handing back
    rec = record()
    rec.checked = True
    rec.spawning(at=0)
    assert rec.hello(9, at=1) == []
    rec.spawned(Child(user_id="1", process=None, pid=9, started=0), mono=1)
    assert rec.state == State.RUNNING and rec.child is not None and rec.child.pid == 9
    with pytest.raises(IllegalTransition):  # but never two processes for one user
        rec.spawned(Child(user_id="1", process=None, pid=10, started=0), mono=2)


def test_queued_users_stop_at_once_and_finished_ones_cannot_be_stopped():
    rec = record()
    assert rec.stop(now=False, reason="stop requested", at=0, mono=0) is None
    assert rec.state == State.STOPPED and not rec.can_stop
    with pytest.raises(IllegalTransition):
        rec.stop(now=True, reason="again", at=1, mono=1)
    with pytest.raises(IllegalTransition):
        rec.spawning(at=1)
    rec.requeue("start requested", at=2, reset=True)
    assert rec.state == State.PENDING and not rec.checked


def test_exits_follow_the_restart_policy_and_a_late_exit_is_ignored():
    rec = record()
    child = running(rec)
    d = rec.exited(child, Exit.CRASH, now=5, at=5, supervisor_stopping=False, redact=str)
    assert rec.state == State.BACKOFF and d is not None and rec.next_start_at == 5 + d.delay
    assert rec.exited(child, 0, now=6, at=6, supervisor_stopping=False, redact=str) is None
    assert not rec.due(5) and rec.due(5 + d.delay)
    child = running(rec)
    assert rec.restarts == 1
    rec.exited(child, Exit.CRASH, now=9, at=9, supervisor_stopping=True, redact=str)
    assert rec.state == State.STOPPED  # no restart while the supervisor stops
    rec.requeue("again", at=10)
    child = running(rec)
    rec.exited(child, Exit.RISK_CHALLENGE, now=11, at=11, supervisor_stopping=False, redact=str)
    assert rec.state == State.FATAL and "risk_challenge" in (rec.sm.reason or "")


def test_an_exit_ok_after_a_stop_is_stopped_and_without_one_is_done():
    rec = record()
    child = running(rec)
    rec.stop(now=False, reason="r", at=1, mono=1)
    rec.exited(child, Exit.OK, now=2, at=2, supervisor_stopping=False, redact=str)
    assert rec.state == State.STOPPED
    rec.requeue("again", at=3)
    child = running(rec)
    rec.exited(child, Exit.OK, now=4, at=4, supervisor_stopping=False, redact=str)
    assert rec.state == State.DONE and all(r.reached for r in rec.rows.values())


def result(**kw) -> VolumeResult:
    return VolumeResult(
        user_id="1", strategy_id="s1", token="KOGE", target=Decimal(100), basis="reported", **kw
    )


@pytest.mark.parametrize("bad", ["NaN", "sNaN", "Infinity", "-1"])
def test_a_volume_that_is_not_a_volume_is_refused_and_leaves_the_row_alone(bad):
    rec = record()
    with pytest.raises(ValueError, match="not a finite, non-negative number"):
        rec.volume_result(result(current=Decimal(bad)), at=0, redact=str)
    row = rec.rows["s1"]
    assert row.current_volume is None and not row.skipped


def test_volume_results_skip_at_target_and_an_expired_session_is_fatal():
    rec = record("s1", "s2")
    rec.volume_result(result(current=Decimal(150)), at=0, redact=str)
    assert rec.rows["s1"].skipped and not rec.check_finished(at=0)  # s2 still to do
    rec2 = record()
    rec2.volume_result(result(current=Decimal(100)), at=0, redact=str)
    assert rec2.check_finished(at=0) and rec2.state == State.SKIPPED
    rec3 = record()
    rec3.volume_result(result(error="session expired", session_expired=True), at=0, redact=str)
    assert rec3.state == State.FATAL and rec3.sm.reason == "session expired"


def test_a_low_balance_stops_the_user_for_the_day_and_status_says_why_and_which_token():
    from supervisor.records import row_status
    from supervisor.render import user_notes

    rec = record()
    child = running(rec)
    chosen = m.TokenChosen(
        user_id="1",
        strategy_id="s1",
        token="LIGHT",
        mul_point=Decimal(4),
        cost_per_credit=Decimal("0.000075"),
    )
    rec.on_event(chosen, now=1)
    (row,) = rec.rows.values()
    notes = user_notes(row_status(rec, row, now=1))
    assert "token: LIGHT x4, expected 0.750 bp per credited USDT" in notes
    why = (
        "eligible balance 60.00 USDT (USDT + Alpha tokens at the bid) is under min_balance_usdt 100"
    )
    rec.on_event(m.Summary(user_id="1", exit_code=int(Exit.LOW_BALANCE), reason=why), now=2)
    d = rec.exited(child, Exit.LOW_BALANCE, now=3, at=3, supervisor_stopping=False, redact=str)
    assert d is not None and d.delay == 0
    assert rec.state == State.STOPPED  # for the day: the next day starts it again
    status = row_status(rec, row, now=4)
    assert f"why: balance under min_balance_usdt for today: {why}" in user_notes(status)


def test_a_process_that_crashes_while_the_supervisor_stops_is_stopped_in_one_move():
    rec = record()
    child = running(rec)
    rec.exited(child, Exit.CRASH, now=5, at=5, supervisor_stopping=True, redact=str)
    assert rec.state == State.STOPPED and rec.sm.reason == "supervisor stopping"
    assert [t.edge for t in rec.sm.history] == ["spawn", "hello", "exited_stopped"]


def test_a_stopped_strategy_that_reaches_its_target_is_done_and_keeps_its_stop_reason():
    from supervisor.records import row_reason, row_state
    from supervisor.states import RowState

    rec = record("s1", "s2")
    running(rec)
    rec.on_event(m.PhaseChanged(user_id="1", phase="trading", strategy_id="s1"), now=1)
    assert row_state(rec, rec.rows["s2"]) == RowState.QUEUED  # waits for s1
    (drain,) = rec.operator_stop("s1", now=False, at=2, mono=2) or []
    assert drain == m.Drain(strategy_id="s1")
    assert row_state(rec, rec.rows["s1"]) == RowState.STOPPING
    reached = m.VolumeChecked(
        user_id="1",
        strategy_id="s1",
        token="KOGE",
        current=Decimal(100),
        target=Decimal(100),
        basis="reported",
    )
    rec.on_event(reached, now=3)
    s1 = rec.rows["s1"]
    assert row_state(rec, s1) == RowState.DONE and row_reason(rec, s1) == "stop s1 requested"
    # a stopped strategy can still be stopped harder (its drain escalates)
    assert rec.operator_stop("s1", now=True, at=4, mono=4) == [m.StopNow(strategy_id="s1")]
    assert rec.operator_stop("s2", now=False, at=5, mono=5) == [m.Drain()]  # the last one
    assert rec.state == State.STOPPING and rec.rows["s2"].stopped == "stop s2 requested"


def test_a_strategy_fatal_for_its_config_stays_fatal_through_start_until_a_reload_fixes_it():
    from supervisor.records import row_state
    from supervisor.states import RowState

    rec = record("s1", "s2")
    assert rec.config_fatal("s1", "strategies[0].target_token: not listed", at=0, mono=0) == []
    s1 = rec.rows["s1"]
    assert row_state(rec, s1) == RowState.FATAL and not s1.to_run
    assert rec.settings == [rec.rows["s2"].settings] and rec.state == State.PENDING
    assert rec.config_fatal("s1", "again", at=1, mono=1) is None  # no work left to stop
    s1.reset()  # what `alphavol start` does to each row
    assert row_state(rec, s1) == RowState.FATAL
    assert s1.revive() and s1.to_run and s1.last_error is None
