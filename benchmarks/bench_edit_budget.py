"""Many replies streaming in one rate-limit scope: a shared EditBudget vs "each reply 1 edit/s".

Platforms limit edits per scope (Slack: ``chat.update`` is Tier 3, 50+/min per workspace per
app), not per message. This benchmark streams N replies at once into one scope through botkit's
real :class:`~botkit.streaming.streamer.ReplyStreamer` and :class:`~botkit.streaming.budget.EditBudget`, onto
:class:`~botkit.testing.RecordingReply` objects (subclassed only to timestamp calls and to play
the platform's limit), fed by a simulated token stream. Two strategies:

* ``shared``: one EditBudget for the scope (default 40/min, burst 3: the Slack adapter's
  defaults, ``[slack] edits_per_minute`` / ``edit_burst``);
* ``naive``: every reply throttles only itself to 1 edit/s (its own ``EditBudget(1.0)``), which
  is what the LLM bots in the field do (design notes, "What the LLM chat bots ... get wrong").

Each runs twice against a simulated platform scope of ``--limit-per-minute`` (default 50) edits
in any 60 s window: once *enforced* (an edit over the limit raises ``RateLimited`` with a
Retry-After until a slot frees, and the streamer reacts as it would to Slack's 429) and once
*counting* (every edit is accepted; the edits over the limit are the 429s that *would* have
happened). Reported: edits/s against the limit, 429s, the longest time any reply's visible text
went without an update (staleness), and how long after the model finished the final text became
visible.

The event loop runs on a virtual clock (timers fire at once, in order), so minutes of simulated
streaming take about a second and the results are deterministic for a seed; the spread over
seeds comes only from the replies' random arrival times, not from machine noise. What it
measures is scheduling (who edits when), not CPU.

The **delivery** section (issue 11) plays one Slack workspace with each method limited on its
own (:mod:`delivery_sim`: ``chat.update`` and ``chat.delete`` 50 per 60 s per workspace,
``chat.postMessage`` 1/s per channel with bursts of 4), ``--questions`` questions spread over
``--channels`` channels, and compares in the same run:

* ``before``: the streamer of ``--before-ref`` (the code before issue 11, loaded from git), where
  every call draws on the one workspace budget and generation waits for the placeholder;
* ``message``: this checkout's streamer with the Slack adapter's default ``[slack]`` budgets, one
  per method, the placeholder posted while the model starts, finals posted anew when the edit
  budget is backed up, but ``progress = "message"``: every reply gets a placeholder;
* ``after``: the same with the ``[slack]`` defaults (``progress = "auto"``): when the workspace's
  edit budget cannot stream every live reply, a reply shows a status line
  (``assistant.threads.setStatus``, its own budget) and its final is one new message; with
  ``edit_window = "bucket"`` (``chat.update`` paced by the token bucket alone);
* ``window``: the same with ``edit_window = "rolling"``: ``chat.update`` also counted in a moving
  window of ``edit_window_calls`` per 60 s (:class:`~botkit.streaming.window.WindowBudget`):
  finals spend what the window has left at once, partial edits only the slots no streaming
  reply's final needs;
* ``tick``: ``window`` with ``[stream] first_text_at_once`` off (the arms above use its default,
  on: the first answer text is edited in when it comes if an edit token is free).

It reports what a user sees (placeholder, first answer text, final text after the model's last
token, partial edits per reply), 429s and API calls per reply per method.

Run from the repository root (a few seconds)::

    python benchmarks/bench_edit_budget.py
    python benchmarks/bench_edit_budget.py --replies 20,100 --seeds 5 --budget-per-minute 40 --burst 3
    python benchmarks/bench_edit_budget.py --replies '' --questions 10,100 --channels 10   # delivery only
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import itertools
import json
import math
import os
import platform
import selectors
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import delivery_sim
from botkit_slack.settings import SlackSettings

from botkit.config import StreamSettings
from botkit.events import RateLimited
from botkit.streaming.budget import BudgetRegistry, EditBudget
from botkit.streaming.streamer import ReplyStreamer
from botkit.testing import RecordingReply

Strategy = Literal["shared", "naive"]
STRATEGIES: tuple[Strategy, ...] = ("shared", "naive")

# -- a virtual clock for asyncio -------------------------------------------------------------


class _JumpSelector(selectors.BaseSelector):
    """Wraps a real selector; instead of blocking for ``timeout`` it moves the clock forward."""

    def __init__(self, clock: VirtualClockLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("virtual clock: nothing ready and nothing scheduled (deadlock)")
        self._clock.now += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` only moves when every task waits for a timer."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpSelector(self))

    def time(self) -> float:
        return self.now


# -- the simulated platform ------------------------------------------------------------------


class PlatformScope:
    """One rate-limit scope: at most ``limit`` edits in any ``window`` seconds.

    ``enforce``: an edit over the limit raises RateLimited with a Retry-After (whole seconds,
    as Slack sends) until the oldest edit in the window expires. Otherwise every edit is accepted
    and the ones over the limit are only counted.
    """

    def __init__(self, limit: int, window: float, enforce: bool, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.enforce = enforce
        self.clock = clock
        self.accepted: collections.deque[float] = collections.deque()
        self.attempts: list[float] = []
        self.over_limit = 0

    def check(self) -> None:
        now = self.clock()
        self.attempts.append(now)
        while self.accepted and self.accepted[0] <= now - self.window:
            self.accepted.popleft()
        if len(self.accepted) >= self.limit:
            self.over_limit += 1
            if self.enforce:
                raise RateLimited(float(math.ceil(self.accepted[0] + self.window - now)))
        self.accepted.append(now)


class TimedReply(RecordingReply):
    """RecordingReply that takes ``latency`` per platform call, timestamps what became visible,
    and lets the scope decide whether an edit is accepted."""

    def __init__(self, scope: PlatformScope, latency: float) -> None:
        super().__init__(max_chars=3900)
        self.scope = scope
        self.latency = latency
        self.visible_at: list[float] = []
        self.finished_at: float | None = None
        self.done_at = 0.0  # when the model finished this reply

    async def post_placeholder(self, text: str) -> str:
        await asyncio.sleep(self.latency)
        message_id = await super().post_placeholder(text)
        self.visible_at.append(self.scope.clock())
        return message_id

    async def edit(self, message_id: str, text: str) -> None:
        self.scope.check()
        await asyncio.sleep(self.latency)
        await super().edit(message_id, text)
        self.visible_at.append(self.scope.clock())

    async def post_continuation(self, text: str) -> str:
        await asyncio.sleep(self.latency)
        message_id = await super().post_continuation(text)
        self.visible_at.append(self.scope.clock())
        return message_id

    async def finish(self) -> None:
        await super().finish()
        self.finished_at = self.scope.clock()


# -- one simulated run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    reasoning_tokens: int
    answer_tokens: int
    tokens_per_second: float
    tokens_per_chunk: int
    ttft: float
    arrival_window: float
    latency: float
    edit_interval: float


@dataclass
class RunResult:
    replies: int
    strategy: Strategy
    enforced: bool
    seed: int
    attempts: int
    accepted: int
    over_limit: int  # 429s returned (enforced) or that would have been returned (counting)
    busy_seconds: float  # first placeholder to last final text
    stream_seconds: float  # first placeholder to the last reply's model finishing
    attempts_during_stream: int
    peak_attempts_60s: int
    max_staleness: list[float] = field(default_factory=list)  # per reply
    final_latency: list[float] = field(default_factory=list)  # per reply
    failed_finals: int = 0
    wrong_final_text: int = 0

    @property
    def edits_per_s_during_stream(self) -> float:
        return self.attempts_during_stream / self.stream_seconds


def peak_in_window(times: Sequence[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def simulate(
    replies: int, strategy: Strategy, enforced: bool, seed: int, args: argparse.Namespace, load: Workload
) -> RunResult:
    loop = asyncio.get_running_loop()
    clock = loop.time
    scope = PlatformScope(args.limit_per_minute, 60.0, enforced, clock)
    shared = EditBudget(args.budget_per_minute / 60.0, args.burst, clock=clock)
    rng = _Random(seed)
    arrivals = sorted(rng.uniform(0, load.arrival_window) for _ in range(replies))
    piece = " word" * load.tokens_per_chunk
    done_at: list[float] = [0.0] * replies
    recorded: list[TimedReply] = []
    failed = 0
    answer = piece * math.ceil(load.answer_tokens / load.tokens_per_chunk)

    async def one(index: int) -> None:
        nonlocal failed
        await asyncio.sleep(arrivals[index])
        reply = TimedReply(scope, load.latency)
        recorded.append(reply)
        budget = shared if strategy == "shared" else EditBudget(args.naive_per_second, 1, clock=clock)
        streamer = ReplyStreamer(
            reply,
            budget,
            edit_interval=load.edit_interval,
            display="thinking",
            clock=clock,
            first_text_at_once=FIRST_TEXT_AT_ONCE,
        )
        await streamer.start()
        await model_stream(streamer, load)
        reply.done_at = done_at[index] = clock()
        try:
            await streamer.finish(answer.strip())
        except RateLimited:
            failed += 1  # gave up after the retry policy's deadline of 429s

    await asyncio.gather(*(one(i) for i in range(replies)))
    counts = _counts(scope, recorded, max(done_at), clock(), enforced)
    result = RunResult(
        replies=replies, strategy=strategy, enforced=enforced, seed=seed, failed_finals=failed, **counts
    )
    for reply in recorded:
        end = reply.finished_at if reply.finished_at is not None else clock()
        times = [*reply.visible_at, end]
        result.max_staleness.append(max(b - a for a, b in itertools.pairwise(times)))
        result.final_latency.append(end - reply.done_at)
        if reply.text != answer.strip():
            result.wrong_final_text += 1
    return result


def _counts(
    scope: PlatformScope, recorded: Sequence[TimedReply], stream_end: float, now: float, enforced: bool
) -> dict[str, Any]:
    """The platform scope's counts of a finished :func:`simulate` run, as :class:`RunResult` fields."""
    first = min(r.visible_at[0] for r in recorded)
    last_final = max(r.finished_at or now for r in recorded)
    attempts = sorted(scope.attempts)
    return dict(
        attempts=len(attempts),
        accepted=len(attempts) - (scope.over_limit if enforced else 0),
        over_limit=scope.over_limit,
        busy_seconds=last_final - first,
        stream_seconds=stream_end - first,
        attempts_during_stream=sum(1 for t in attempts if t <= stream_end),
        peak_attempts_60s=peak_in_window(attempts, 60.0),
    )


async def model_stream(streamer: Any, load: Workload) -> None:
    """The model's side of one reply: TTFT, then reasoning and answer chunks at its speed."""
    piece = " word" * load.tokens_per_chunk
    gap = load.tokens_per_chunk / load.tokens_per_second
    await asyncio.sleep(load.ttft)
    for _ in range(math.ceil(load.reasoning_tokens / load.tokens_per_chunk)):
        streamer.add_reasoning(piece)
        await asyncio.sleep(gap)
    for _ in range(math.ceil(load.answer_tokens / load.tokens_per_chunk)):
        streamer.add_answer(piece)
        await asyncio.sleep(gap)


class _Random:
    """A tiny seeded LCG, so results do not depend on the random module's algorithm."""

    def __init__(self, seed: int) -> None:
        self.state = (seed * 6364136223846793005 + 1442695040888963407) % 2**64

    def uniform(self, low: float, high: float) -> float:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return low + (high - low) * (self.state >> 11) / 2**53


def workload(args: argparse.Namespace) -> Workload:
    return Workload(
        reasoning_tokens=args.reasoning_tokens,
        answer_tokens=args.answer_tokens,
        tokens_per_second=args.tokens_per_second,
        tokens_per_chunk=args.tokens_per_chunk,
        ttft=args.ttft,
        arrival_window=args.arrival_window,
        latency=args.api_latency,
        edit_interval=args.edit_interval,
    )


def run_one(
    replies: int, strategy: Strategy, enforced: bool, seed: int, args: argparse.Namespace
) -> RunResult:
    load = workload(args)
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(simulate(replies, strategy, enforced, seed, args, load))


# -- reporting -------------------------------------------------------------------------------


def fmt(values: Sequence[float], digits: int = 1) -> str:
    med, low, high = statistics.median(values), min(values), max(values)
    if low == high:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def cases(args: argparse.Namespace) -> Iterator[tuple[int, Strategy, bool]]:
    for replies in args.replies:
        for enforced in (True, False):
            for strategy in STRATEGIES:
                yield replies, strategy, enforced


def report(results: list[RunResult], args: argparse.Namespace) -> str:
    groups: dict[tuple[int, Strategy, bool], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.replies, result.strategy, result.enforced), []).append(result)
    lines = [*_enforced_table(groups, args), *_counting_table(groups, args), *_ratio_table(groups, args)]
    failed = sum(r.failed_finals for r in results)
    wrong = sum(r.wrong_final_text for r in results)
    lines += ["", f"Final texts that never landed: {failed}; replies ending with the wrong text: {wrong}."]
    return "\n".join(lines)


def _enforced_table(
    groups: dict[tuple[int, Strategy, bool], list[RunResult]], args: argparse.Namespace
) -> list[str]:
    """The run where the platform answers past its limit with 429s."""
    limit_per_s = args.limit_per_minute / 60.0
    lines = [
        f"Platform scope limit: {args.limit_per_minute} edits per 60 s ({limit_per_s:.2f}/s). "
        f"shared = one EditBudget({args.budget_per_minute:g}/min, burst {args.burst}); "
        f"naive = EditBudget({args.naive_per_second:g}/s) per reply.",
        "",
        "### Platform enforces the limit (429 + Retry-After; the streamer waits it out)",
        "",
        "| replies | strategy | edit calls/s while streaming | 429s | max staleness, worst reply s "
        "| max staleness, median reply s | final latency median s | final latency max s "
        "| all final after s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for replies in args.replies:
        for strategy in STRATEGIES:
            group = groups[(replies, strategy, True)]
            lines.append(
                f"| {replies} | {strategy} "
                f"| {fmt([g.edits_per_s_during_stream for g in group], 2)} "
                f"= {statistics.median(g.edits_per_s_during_stream for g in group) / limit_per_s:.1f}x limit "
                f"| {fmt([g.over_limit for g in group], 0)} "
                f"| {fmt([max(g.max_staleness) for g in group])} "
                f"| {fmt([statistics.median(g.max_staleness) for g in group])} "
                f"| {fmt([statistics.median(g.final_latency) for g in group])} "
                f"| {fmt([max(g.final_latency) for g in group])} "
                f"| {fmt([g.busy_seconds for g in group])} |"
            )
    return lines


def _counting_table(
    groups: dict[tuple[int, Strategy, bool], list[RunResult]], args: argparse.Namespace
) -> list[str]:
    """The run where the platform accepts every edit and counts the would-be 429s."""
    limit_per_s = args.limit_per_minute / 60.0
    lines = [
        "",
        "### Platform accepts everything (how many edits would have been 429s)",
        "",
        "| replies | strategy | edits/s while streaming | peak edits in any 60 s "
        f"(limit {args.limit_per_minute}) | would-be 429s / edits | max staleness, worst reply s "
        "| final latency median s | final latency max s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for replies in args.replies:
        for strategy in STRATEGIES:
            group = groups[(replies, strategy, False)]
            lines.append(
                f"| {replies} | {strategy} "
                f"| {fmt([g.edits_per_s_during_stream for g in group], 2)} "
                f"= {statistics.median(g.edits_per_s_during_stream for g in group) / limit_per_s:.1f}x limit "
                f"| {fmt([g.peak_attempts_60s for g in group], 0)} "
                f"| {fmt([g.over_limit for g in group], 0)} / {fmt([g.attempts for g in group], 0)} "
                f"| {fmt([max(g.max_staleness) for g in group])} "
                f"| {fmt([statistics.median(g.final_latency) for g in group])} "
                f"| {fmt([max(g.final_latency) for g in group])} |"
            )
    return lines


def _ratio_table(
    groups: dict[tuple[int, Strategy, bool], list[RunResult]], args: argparse.Namespace
) -> list[str]:
    """Naive against shared, platform enforcing."""
    lines = [
        "",
        "Ratios, naive vs shared, platform enforcing (median over seeds):",
        "",
        "| replies | edit calls while streaming | 429s | worst staleness | median final latency |",
        "|---|---|---|---|---|",
    ]
    for replies in args.replies:
        shared, naive = groups[(replies, "shared", True)], groups[(replies, "naive", True)]

        def ratio(metric: Callable[[RunResult], float], a: list[RunResult], b: list[RunResult]) -> str:
            top, bottom = statistics.median(map(metric, a)), statistics.median(map(metric, b))
            return f"{top / bottom:.1f}x" if bottom else ("same" if top == bottom else f"{top:g} vs 0")

        lines.append(
            f"| {replies} | {ratio(lambda g: g.attempts_during_stream, naive, shared)} "
            f"| {ratio(lambda g: g.over_limit, naive, shared)} "
            f"| {ratio(lambda g: max(g.max_staleness), naive, shared)} "
            f"| {ratio(lambda g: statistics.median(g.final_latency), naive, shared)} |"
        )
    return lines


# -- delivery: one workspace, per-method limits, before vs after issue 11 ---------------------

Arm = Literal["before", "message", "after", "window", "tick"]
ARMS: tuple[Arm, ...] = ("before", "message", "after", "window", "tick")

#: ``[stream] first_text_at_once`` as configured by default: every arm of this checkout streams
#: as ``botkit run`` does (``tick``: the ``window`` arm with it off, the first answer text on
#: the edit interval's tick, as before the default changed).
FIRST_TEXT_AT_ONCE: bool = StreamSettings.model_fields["first_text_at_once"].default


def streamer_at(ref: str) -> Any:
    """The ``ReplyStreamer`` class of commit ``ref`` (``git show``), for the ``before`` arm."""
    import importlib.util
    import subprocess

    source = subprocess.run(
        ["git", "show", f"{ref}:botkit/streaming/streamer.py"], capture_output=True, text=True, check=True
    ).stdout
    spec = importlib.util.spec_from_loader(f"streamer_{ref}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{ref}:botkit/streaming/streamer.py", "exec"), module.__dict__)
    return module.ReplyStreamer


def slack_defaults() -> dict[str, Any]:
    return {name: field.default for name, field in SlackSettings.model_fields.items()}


@dataclass
class DeliveryResult:
    questions: int
    arm: Arm
    seed: int
    placeholder: list[float] = field(default_factory=list)  # s after the question
    first_text: list[float] = field(default_factory=list)  # s after the question
    final_after_last_token: list[float] = field(default_factory=list)
    partial_edits: list[int] = field(default_factory=list)  # per reply
    calls: dict[str, int] = field(default_factory=dict)
    limited: dict[str, int] = field(default_factory=dict)
    status_lines: int = 0  # replies that showed a status line instead of a placeholder
    not_exactly_final: int = 0  # replies whose thread does not show exactly the final text
    never_final: int = 0


async def simulate_delivery(
    questions: int, arm: Arm, seed: int, args: argparse.Namespace, load: Workload, before_streamer: Any
) -> DeliveryResult:
    loop = asyncio.get_running_loop()
    clock = loop.time
    workspace = delivery_sim.Workspace(delivery_sim.SlackLimits(), load.latency, clock)
    scopes = _delivery_scopes(arm)
    registry = BudgetRegistry(clock)
    rng = _Random(seed)
    arrivals = sorted(rng.uniform(0, load.arrival_window) for _ in range(questions))
    piece = " word" * load.tokens_per_chunk
    answer = (piece * math.ceil(load.answer_tokens / load.tokens_per_chunk)).strip()
    replies: list[delivery_sim.WorkspaceReply] = []

    async def one(index: int) -> None:
        await asyncio.sleep(arrivals[index])
        reply = delivery_sim.WorkspaceReply(workspace, f"C{index % args.channels}", scopes)
        reply.asked_at = clock()
        replies.append(reply)
        edits = registry.for_scope(reply.rate_scope("edit"))
        if arm == "before":
            streamer = before_streamer(reply, edits, edit_interval=load.edit_interval, clock=clock)
            await streamer.start()  # the old pipeline waited for the placeholder
        else:
            streamer = ReplyStreamer(
                reply,
                edits,
                budgets=registry,
                edit_interval=load.edit_interval,
                clock=clock,
                first_text_at_once=FIRST_TEXT_AT_ONCE and arm != "tick",
            )
            streamer.begin()
        await model_stream(streamer, load)
        reply.done_at = clock()
        await streamer.finish(answer)

    await asyncio.gather(*(one(i) for i in range(questions)))
    await asyncio.sleep(600)  # virtual: background deletions of replaced placeholders end

    result = DeliveryResult(
        questions, arm, seed, calls=dict(workspace.calls), limited=dict(workspace.limited)
    )
    _add_replies(result, replies, answer)
    return result


def _delivery_scopes(arm: Arm) -> delivery_sim.Scopes:
    """The Slack adapter's default budgets as ``arm`` uses them (``before``: one shared edit
    budget, placeholders only)."""
    defaults = slack_defaults()
    return delivery_sim.Scopes(
        edit_rate=defaults["edits_per_minute"] / 60.0,
        edit_burst=defaults["edit_burst"],
        post_rate=defaults["posts_per_minute"] / 60.0,
        post_burst=defaults["post_burst"],
        delete_rate=defaults["deletes_per_minute"] / 60.0,
        per_method=arm != "before",
        replace_final=arm != "before" and defaults["replace_final"],
        status_rate=defaults["statuses_per_minute"] / 60.0,
        status_burst=defaults["status_burst"],
        progress=defaults["progress"] if arm in ("after", "window", "tick") else "message",
        edit_window=(defaults["edit_window_calls"], 60.0) if arm in ("window", "tick") else None,
    )


def _add_replies(result: DeliveryResult, replies: Sequence[delivery_sim.WorkspaceReply], answer: str) -> None:
    """Each finished reply's latencies and counts into ``result``."""

    def is_answer(text: str) -> bool:
        return "word" in text

    for reply in replies:
        assert reply.done_at is not None
        result.placeholder.append(reply.first_visible() - reply.asked_at)
        first = reply.first_answer_text(is_answer)
        result.first_text.append((first if first is not None else math.inf) - reply.asked_at)
        final = reply.final_visible(answer)
        if final is None:
            result.never_final += 1
        result.final_after_last_token.append((final if final is not None else math.inf) - reply.done_at)
        result.partial_edits.append(reply.partial_edits(answer, is_answer))
        result.status_lines += reply.status_at is not None
        if reply.visible() != [answer]:
            result.not_exactly_final += 1


def run_delivery(
    questions: int, arm: Arm, seed: int, args: argparse.Namespace, before: Any
) -> DeliveryResult:
    load = workload(args)
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(simulate_delivery(questions, arm, seed, args, load, before))


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def report_delivery(results: list[DeliveryResult], args: argparse.Namespace) -> str:
    groups: dict[tuple[int, Arm], list[DeliveryResult]] = {}
    for result in results:
        groups.setdefault((result.questions, result.arm), []).append(result)
    lines = [
        f"One workspace, questions spread over {args.channels} channels; Slack limits played per method: "
        "chat.update and chat.delete 50 per 60 s per workspace, chat.postMessage 1/s per channel "
        f"(bursts of 4). before = the streamer of {args.before_ref} (one budget for every call, "
        'generation waits for the placeholder); message = this checkout with progress = "message" '
        "(a placeholder for every reply); after = this checkout with the [slack] defaults "
        f"({_budget_line()}) but edit_window = bucket; window = the same with edit_window = rolling "
        f"({slack_defaults()['edit_window_calls']} chat.update per 60 s); message, after and window with "
        f"[stream] first_text_at_once = {str(FIRST_TEXT_AT_ONCE).lower()} (the default); tick = window with "
        f"first_text_at_once = false (the first answer text on the edit interval's tick). "
        f"Every reply pooled over {args.seeds} seeds.",
        "",
        "| questions | arm | placeholder or status line p50 / p95 s | first answer text p50 / p95 s "
        "| final after last token p50 / p95 / p99 s | final within 1.5 s | partial edits per reply "
        "min / median | 429s | calls per reply: postMessage / update / delete / setStatus "
        "| status lines | not exactly the final |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for questions in args.questions:
        for arm in ARMS:
            group = groups[(questions, arm)]
            place = [v for g in group for v in g.placeholder]
            first = [v for g in group for v in g.first_text]
            final = [v for g in group for v in g.final_after_last_token]
            partial = [v for g in group for v in g.partial_edits]
            within = sum(1 for v in final if v <= 1.5) / len(final)
            limited = sum(sum(g.limited.values()) for g in group)
            replies = questions * len(group)

            def per_reply(method: str, group: list[DeliveryResult] = group, replies: int = replies) -> str:
                return f"{sum(g.calls.get(method, 0) for g in group) / replies:.2f}"

            lines.append(
                f"| {questions} | {arm} | {pct(place, 50):.1f} / {pct(place, 95):.1f} "
                f"| {pct(first, 50):.1f} / {pct(first, 95):.1f} "
                f"| {pct(final, 50):.1f} / {pct(final, 95):.1f} / {pct(final, 99):.1f} | {within:.0%} "
                f"| {min(partial)} / {statistics.median(partial):g} | {limited} "
                f"| {per_reply('chat.postMessage')} / {per_reply('chat.update')} / {per_reply('chat.delete')} "
                f"/ {per_reply('assistant.threads.setStatus')} "
                f"| {sum(g.status_lines for g in group) / replies:.0%} "
                f"| {sum(g.not_exactly_final for g in group)} |"
            )
    return "\n".join(lines)


def _budget_line() -> str:
    d = slack_defaults()
    return (
        f"edits_per_minute {d['edits_per_minute']:g} burst {d['edit_burst']}, posts_per_minute "
        f"{d['posts_per_minute']:g} per channel burst {d['post_burst']}, deletes_per_minute "
        f"{d['deletes_per_minute']:g}, replace_final {str(d['replace_final']).lower()}, progress "
        f"{d['progress']}, statuses_per_minute {d['statuses_per_minute']:g} burst {d['status_burst']}"
    )


def sizes_arg(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--replies", type=sizes_arg, default=[20, 100], help="concurrent replies")
    parser.add_argument("--seeds", type=int, default=3, help="arrival-time seeds per configuration")
    parser.add_argument("--limit-per-minute", type=int, default=50, help="platform scope limit (Slack T3)")
    parser.add_argument("--budget-per-minute", type=float, default=40.0, help="shared EditBudget rate")
    parser.add_argument("--burst", type=int, default=3, help="shared EditBudget burst")
    parser.add_argument("--naive-per-second", type=float, default=1.0, help="per-reply budget (naive)")
    parser.add_argument("--edit-interval", type=float, default=1.0, help="ReplyStreamer edit_interval")
    parser.add_argument("--reasoning-tokens", type=int, default=400)
    parser.add_argument("--answer-tokens", type=int, default=400)
    parser.add_argument("--tokens-per-second", type=float, default=100.0, help="per reply")
    parser.add_argument("--tokens-per-chunk", type=int, default=8)
    parser.add_argument("--ttft", type=float, default=0.3, help="time to first token, s")
    parser.add_argument("--arrival-window", type=float, default=2.0, help="replies start within this, s")
    parser.add_argument("--api-latency", type=float, default=0.1, help="per platform call, s")
    parser.add_argument("--questions", type=sizes_arg, default=[10, 100], help="delivery: questions at once")
    parser.add_argument("--channels", type=int, default=10, help="delivery: channels of the workspace")
    parser.add_argument("--before-ref", default="3d9c7fd", help="delivery: git commit of the 'before' arm")
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args(argv)

    command = "python benchmarks/bench_edit_budget.py " + " ".join(sys.argv[1:] if argv is None else argv)
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"# {command}\n# {date}  {platform.machine()}, {os.cpu_count()} CPUs\n")
    print(
        f"Workload: {args.reasoning_tokens} reasoning + {args.answer_tokens} answer tokens per reply at "
        f"{args.tokens_per_second:g} tokens/s, {args.tokens_per_chunk} tokens per chunk, TTFT {args.ttft:g} s, "
        f"arrivals within {args.arrival_window:g} s, {args.api_latency * 1000:g} ms per platform call, "
        f"edit_interval {args.edit_interval:g} s, 'thinking' display; {args.seeds} seeds.\n"
    )
    started = time.perf_counter()
    results = [
        run_one(replies, strategy, enforced, seed, args)
        for replies, strategy, enforced in cases(args)
        for seed in range(args.seeds)
    ]
    if results:
        print("## One rate-limit scope: shared budget vs each reply 1 edit/s\n")
        print(report(results, args))
    delivered: list[DeliveryResult] = []
    if args.questions:
        before = streamer_at(args.before_ref)
        delivered = [
            run_delivery(questions, arm, seed, args, before)
            for questions in args.questions
            for arm in ARMS
            for seed in range(args.seeds)
        ]
        print("\n## Delivery: one Slack workspace, per-method limits, before vs after\n")
        print(report_delivery(delivered, args))
    print(f"\n(simulated on a virtual clock in {time.perf_counter() - started:.1f} s of real time)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"scope": [asdict(r) for r in results], "delivery": [asdict(r) for r in delivered]},
                out,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
