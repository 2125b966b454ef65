"""The restart policy and the state machine, on their own (no processes)."""

from __future__ import annotations

import pytest

from protocol.exitcodes import Exit
from supervisor.restart import Action, CrashHistory, RestartPolicy
from supervisor.states import EDGES, IllegalTransition, State, StateMachine

POLICY = RestartPolicy(initial_delay=1, max_delay=60, healthy_after=100, max_crashes=10, window=1e9)


def test_crash_delays_double_up_to_the_cap_and_reset_after_a_healthy_stretch():
    h = CrashHistory(POLICY)
    delays = [h.on_exit(Exit.CRASH, now=i, ran_for=1).delay for i in range(8)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    d = h.on_exit(-9, now=9, ran_for=500)  # died by SIGKILL after a long healthy run
    assert (d.action, d.delay) == (Action.RESTART, 1)
    assert "signal 9" in d.reason


def test_too_many_crashes_within_the_window_is_fatal():
    h = CrashHistory(RestartPolicy(max_crashes=3, window=10))
    actions = [h.on_exit(Exit.EXCHANGE_DOWN, now=t, ran_for=0).action for t in (0, 1, 2, 3)]
    assert actions == [Action.RESTART] * 3 + [Action.FATAL]
    h2 = CrashHistory(RestartPolicy(max_crashes=3, window=10))
    # spread out: old crashes leave the window
    actions = [h2.on_exit(Exit.CRASH, now=t, ran_for=0).action for t in (0, 20, 40, 60, 80)]
    assert Action.FATAL not in actions


@pytest.mark.parametrize(
    "code",
    [Exit.SESSION_EXPIRED, Exit.RISK_CHALLENGE, Exit.BAD_CONFIG, Exit.LEFTOVER],
)
def test_fatal_exit_statuses_never_restart(code):
    d = CrashHistory(POLICY).on_exit(code, now=0, ran_for=0)
    assert d.action == Action.FATAL
    assert code.name.lower() in d.reason


def test_ok_is_done_cost_cap_is_stopped_and_requested_stops_are_stopped():
    h = CrashHistory(POLICY)
    assert h.on_exit(Exit.OK, now=0, ran_for=0).action == Action.DONE
    assert h.on_exit(Exit.COST_CAP, now=0, ran_for=0).action == Action.STOPPED
    assert h.on_exit(Exit.LOW_BALANCE, now=0, ran_for=0).action == Action.STOPPED
    assert h.on_exit(Exit.OK, now=0, ran_for=0, requested_stop=True).action == Action.STOPPED
    assert h.on_exit(-15, now=0, ran_for=0, requested_stop=True).action == Action.STOPPED
    # a fatal status stays fatal even when we asked it to stop
    d = h.on_exit(Exit.RISK_CHALLENGE, now=0, ran_for=0, requested_stop=True)
    assert d.action == Action.FATAL


def test_policy_from_env():
    p = RestartPolicy.from_env({"ALPHAVOL_RESTART_DELAY": "0.05", "ALPHAVOL_CRASH_LIMIT": "2"})
    assert (p.initial_delay, p.max_crashes, p.max_delay) == (0.05, 2, 60.0)


def test_state_machine_names_every_edge_and_refuses_others():
    sm = StateMachine("7")
    path = [State.STARTING, State.RUNNING, State.BACKOFF, State.STARTING, State.RUNNING]
    for i, st in enumerate(path):
        sm.to(st, at=i, reason=f"step {i}")
    assert [t.edge for t in sm.history] == ["spawn", "hello", "crashed", "respawn", "hello"]
    with pytest.raises(IllegalTransition):
        sm.to(State.SKIPPED, at=9)
    assert sm.state == State.RUNNING
    # every state can be left or is terminal-with-requeue: nothing is a dead end
    sources = {a for a, _ in EDGES}
    assert set(State) <= sources
