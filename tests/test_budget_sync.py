"""A budget kept within the platform's own numbers (:meth:`EditBudget.sync`, fed through a
:class:`~botkit.ratefeed.RateFeed`), and the token it keeps back for final texts."""

from __future__ import annotations

import asyncio

from botkit.events import RateScope
from botkit.ratefeed import RateFeed
from botkit.streaming.budget import BudgetRegistry, EditBudget
from botkit.streaming.retry import FIRST

SLOW = 0.001  # tokens per second: the bucket's own refill never matters in these tests


async def test_an_empty_server_window_holds_calls_until_it_resets_then_gives_its_full_count() -> None:
    budget = EditBudget(SLOW, burst=1)
    budget.sync(remaining=0, reset_after=0.2, limit=5)
    assert budget.paused_for() > 0
    waiting = asyncio.ensure_future(budget.acquire(0.0))
    await asyncio.sleep(0)
    assert not waiting.done()
    # after the reset, the window's five are there at once (the bucket alone would take 1000 s each)
    await asyncio.wait_for(asyncio.gather(waiting, *(budget.acquire(0.0) for _ in range(4))), 5)
    assert budget.granted == 5
    late = asyncio.ensure_future(budget.acquire(0.0))
    await asyncio.sleep(0.05)
    assert not late.done()  # the sixth waits for the bucket
    late.cancel()


async def test_the_bucket_never_holds_more_than_the_server_has_left() -> None:
    budget = EditBudget(SLOW, burst=5)
    budget.sync(remaining=2, reset_after=60.0, limit=5)
    await asyncio.wait_for(asyncio.gather(budget.acquire(FIRST), budget.acquire(FIRST)), 5)
    third = asyncio.ensure_future(budget.acquire(FIRST))
    await asyncio.sleep(0.05)
    assert not third.done() and budget.granted == 2
    third.cancel()


async def test_a_streaming_edit_leaves_the_reserved_token_to_a_final() -> None:
    budget = EditBudget(SLOW, burst=1, reserve=1)
    budget.sync(remaining=1, reset_after=60.0, limit=5)  # one left in the server's window
    partial = asyncio.ensure_future(budget.acquire(0.0))
    await asyncio.sleep(0.05)
    assert not partial.done()  # it would take the last token
    await asyncio.wait_for(budget.acquire(FIRST), 5)  # the final gets it at once
    assert not partial.done()
    partial.cancel()


async def test_the_buckets_own_refill_never_lifts_it_above_what_the_server_has_left() -> None:
    """Between two answers the bucket refills at its own rate (here 1,000/s): that must not
    give a streaming edit the call the server's window keeps for the final (the slash bench of
    2026-12-04: five partial edits in the final's window, the final waiting for the reset)."""
    budget = EditBudget(1000.0, burst=1, reserve=1)
    budget.sync(remaining=4, reset_after=60.0, limit=5)
    for _ in range(3):  # 4 -> 1 left: the partial edits the window has room for besides the final
        await asyncio.wait_for(budget.acquire(0.0), 5)
    partial = asyncio.ensure_future(budget.acquire(0.0))
    await asyncio.sleep(0.05)  # 50 ms: the bucket alone would hold 50 tokens again (burst 5)
    assert not partial.done() and budget.granted == 3
    assert budget.expected_wait(0.0) > 1.0  # until the window resets, not the bucket's 1 ms
    await asyncio.wait_for(budget.acquire(FIRST), 5)  # the final gets the last call at once
    assert not partial.done() and budget.server_left == 0
    partial.cancel()


async def test_a_windows_reset_gives_partial_edits_its_count_again() -> None:
    budget = EditBudget(1000.0, burst=1, reserve=1)
    budget.sync(remaining=1, reset_after=0.1, limit=5)
    partial = asyncio.ensure_future(budget.acquire(0.0))
    await asyncio.sleep(0.02)
    assert not partial.done()  # the window's last call is the final's
    await asyncio.wait_for(partial, 5)  # after the reset: five again, the partial edit goes
    assert budget.server_left == 4


async def test_a_scope_with_a_feed_gets_a_budget_that_follows_it() -> None:
    feed = RateFeed()
    feed.observe(0, 30.0, 5)  # observed before the budget existed: given on subscription
    registry = BudgetRegistry()
    budget = registry.for_scope(RateScope("discord:1:edit", 1.0, feed=feed))
    assert budget.paused_for() > 0 and budget.burst == 5
    assert registry.for_scope(RateScope("discord:1:edit", 1.0, feed=feed)) is budget


async def test_a_fed_budget_sends_one_call_until_the_first_numbers_come() -> None:
    feed = RateFeed()
    budget = BudgetRegistry().for_scope(RateScope("discord:2:post", 1000.0, feed=feed))
    await asyncio.wait_for(budget.acquire(FIRST), 5)
    second = asyncio.ensure_future(budget.acquire(FIRST))
    await asyncio.sleep(0.05)  # the bucket alone would have granted it after 1 ms
    assert not second.done()
    feed.observe(4, 5.0, 5)  # the first answer's numbers
    await asyncio.wait_for(second, 5)
    assert budget.granted == 2
