"""``chat.update`` on a moving window (``[slack] edit_window``, issue 11 goal 3): the budget's
own rules (the bot under Slack's real limits with it: test_slack_progress.py).

The unit tests drive :class:`~botkit.streaming.window.WindowBudget` on a clock they set by hand
(its timers only re-dispatch; every grant is decided at the clock's value), and count grants.
"""

from __future__ import annotations

import asyncio

import pytest
from botkit_slack.settings import SlackSettings

from botkit.streaming.budget import BudgetRegistry
from botkit.streaming.retry import FIRST
from botkit.streaming.window import WindowBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _waiters(budget: WindowBudget, priorities: list[float]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(budget.acquire(p)) for p in priorities]


async def test_a_burst_after_idle_spends_the_whole_window_and_no_more() -> None:
    """After a quiet window, ``limit`` finals go at once; the next waits until the first grant
    leaves the window (plus the guard), then exactly one more goes."""
    clock = Clock()
    budget = WindowBudget(5, 60.0, None, clock=clock, guard=1.0)
    tasks = _waiters(budget, [FIRST] * 7)
    await _settle()
    assert sum(t.done() for t in tasks) == 5
    assert budget.expected_wait(FIRST) == pytest.approx(61.0 + 60.0 * 0)  # behind one waiter: 61 s
    clock.now += 60.5  # inside the guard: still five in the window
    budget._dispatch()
    await _settle()
    assert sum(t.done() for t in tasks) == 5
    clock.now += 1.0
    budget._dispatch()
    await _settle()
    assert all(t.done() for t in tasks)  # all five slots came free at once: both waiters went
    for task in tasks:
        task.cancel()


async def test_never_more_than_the_limit_in_any_window() -> None:
    """Grants of finals and partial edits over several windows: at most ``limit`` in any
    ``window + guard`` seconds, counted from the budget's own grant times."""
    clock = Clock()
    budget = WindowBudget(4, 10.0, 1.0, burst=2, clock=clock, guard=0.5)
    granted: list[float] = []

    async def one(priority: float) -> None:
        await budget.acquire(priority)
        granted.append(clock.now)

    tasks = [asyncio.create_task(one(FIRST if i % 3 == 0 else float(i))) for i in range(30)]
    for _ in range(400):
        await _settle()
        clock.now += 0.25
        budget._dispatch()
    await _settle()
    assert len(granted) == 30
    for index, at in enumerate(granted):
        assert sum(1 for t in granted[index:] if t < at + 10.5) <= 4
    for task in tasks:
        task.cancel()


async def test_finals_go_first_and_partial_edits_leave_the_owed_slots() -> None:
    """Two replies owe a final: of three free slots a partial edit may take one; a second
    partial edit waits, and a final asked for after it still goes at once. When the finals are
    paid, the partial edit takes the free slot."""
    clock = Clock()
    budget = WindowBudget(3, 60.0, None, clock=clock)
    paid = [budget.owe_final(), budget.owe_final()]
    first, second = _waiters(budget, [5.0, 6.0])
    await _settle()
    assert first.done() and not second.done()
    assert budget.expected_wait(7.0) == float("inf") or budget.expected_wait(7.0) > 60
    (final,) = _waiters(budget, [FIRST])
    await _settle()
    assert final.done() and not second.done()
    assert budget.free_slots() == 1
    paid[0]()
    await _settle()
    assert not second.done()  # one slot left, still owed to the other reply's final
    paid[1]()
    await _settle()
    assert second.done()
    assert budget.owed == 0


async def test_crowded_when_the_free_slots_are_owed() -> None:
    """A new reply streams only while the window can still promise it its final."""
    clock = Clock()
    budget = WindowBudget(3, 60.0, 0.5, burst=3, clock=clock)
    assert not budget.crowded(20.0)
    for _ in range(3):
        budget.owe_final()
    assert budget.crowded(20.0)


async def test_a_cancelled_grant_is_given_back() -> None:
    clock = Clock()
    budget = WindowBudget(1, 60.0, None, clock=clock)
    (task,) = _waiters(budget, [FIRST])
    task.cancel()  # granted at once, cancelled before it ran
    await asyncio.gather(task, return_exceptions=True)
    assert budget.free_slots() == 1


def test_registry_and_settings_pick_the_window() -> None:
    """``edit_window = "auto"`` is rolling at the defaults, the bucket alone for a pace below the
    default or above the window's count; an unknown value is refused by name."""
    settings = SlackSettings(bot_token="xoxb-1", app_token="xapp-1")
    assert settings.update_window == (50, 60.0)
    slower = SlackSettings(bot_token="xoxb-1", app_token="xapp-1", edits_per_minute=10)
    assert slower.update_window is None
    lifted = SlackSettings(bot_token="xoxb-1", app_token="xapp-1", edits_per_minute=60_000)
    assert lifted.update_window is None
    forced = SlackSettings(bot_token="xoxb-1", app_token="xapp-1", edits_per_minute=10, edit_window="rolling")
    assert forced.update_window == (50, 60.0)
    with pytest.raises(ValueError, match="edit_window"):
        SlackSettings(bot_token="xoxb-1", app_token="xapp-1", edit_window="sliding")
    registry = BudgetRegistry()
    assert isinstance(registry.get("w", 1.0, 3, window=(50, 60.0)), WindowBudget)
    assert not isinstance(registry.get("b", 1.0, 3), WindowBudget)
