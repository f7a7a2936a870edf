"""End to end: N concurrent conversations through a real ``botkit run`` process, as users see them.

Four kinds of process, each on its own (``--pin``: botkit alone on CPU 0, everything else on CPU 1):

* the model: ``python -m botkit.llm.standin`` (or ``--base-url`` of a real vLLM, e.g. on the GPU
  machine: then nothing is started and ``--tokens-per-chunk`` must say its ``--stream-interval``);
* the platform: a :class:`~botkit.testing.fake_slack.FakeSlack` in a process of its own (this file's
  ``fake-slack`` role), with Slack's ``chat.update`` limit (50 per minute, answered with 429 and
  ``Retry-After``) enforced (``limits=on``, botkit on its default budget), every method's published
  limit enforced (``limits=real``: ``chat.postMessage`` 1/s per channel with bursts of 4 too), or
  lifted (``limits=off``, botkit's budget lifted too); it pushes the N mentions (10 channels, one user each) and records
  every API call with its time;
* ``botkit run`` with the Slack adapter and a fresh SQLite database;
* the bare loop (this file's ``bare`` role): aiohttp + ``json.loads`` reading the same N streams
  from the same server, in the same run, right after botkit's turn: the floor botkit is compared to.

Reported per configuration: botkit CPU per SSE chunk and per 1,000 tokens (``/proc/PID/stat``
between the first mention and the last final write; start-up excluded) beside the bare loop's
(``time.process_time``), their ratio, tokens/s achieved vs offered, placeholder / first text /
final text latency p50/p95/p99 from the fake's call log (from the mention's push), API calls per
reply, 429s, failures (a reply whose final text is not the stand-in's answer, or an "⚠️" error),
and per process (botkit, the stand-in, the fake Slack) its CPU-s over the same window, the seconds
it was runnable but waited for a CPU, and its busiest second: which one bounded the run. Output: a table on stdout, ``--json`` (all numbers) and ``--png``
(matplotlib Agg; skipped with a note when matplotlib is missing).

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_e2e.py --smoke                        # a few seconds; exits 1 on a bad reply
    python benchmarks/bench_e2e.py --streams 10,100,500 --tokens-per-chunk 1,8 --limits off \\
        --json benchmarks/results/e2e.json --png benchmarks/results/e2e.png
    python benchmarks/bench_e2e.py --base-url http://127.0.0.1:8000/v1 --tokens-per-chunk 8 \\
        --streams 1,32,128,512 --tokens 512          # against a real vLLM (GPU machine)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

REPO = Path(__file__).resolve().parent.parent
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
CHANNELS = 10
SLACK_UPDATES_PER_MINUTE = 50  # chat.update, Tier 3, per workspace
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_STATUS_PREFIXES = ("_Thinking", "⏳")


def question(index: int, words: int) -> str:
    """Question ``index``: the stand-in's answer quotes it, so its length sets the reply's."""
    return f"Q{index} please summarise: " + " ".join(f"w{(index + i) % 97}" for i in range(words))


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_waited(pid: int) -> float:
    """Seconds a process has spent runnable but waiting for a CPU (``/proc/PID/schedstat``'s
    second field): where the machine's other load, not the process's own work, took its time."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def proc_counts(pid: int) -> dict[str, float]:
    """A process's user and system CPU seconds apart, and its context switches summed over its
    threads (voluntary: a thread that blocked, e.g. aiosqlite's worker waiting on its queue or the
    loop in epoll; involuntary: preempted), from Linux /proc: what a thread hop or a syscall that
    sleeps costs shows here, not in py-spy's samples."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    counts = {"user": int(fields[11]) / _CLK_TCK, "system": int(fields[12]) / _CLK_TCK,
              "voluntary": 0.0, "involuntary": 0.0, "threads": 0.0}  # fmt: skip
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # a thread that ended while being read
            continue
        counts["threads"] += 1
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                key, value = line.split(":")
                counts["voluntary" if key.startswith("vol") else "involuntary"] += int(value)
    return counts


def count_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """``after - before`` per key (threads: the count after)."""
    return {k: v if k == "threads" else v - before.get(k, 0.0) for k, v in after.items()}


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# -- role: the fake Slack and its users (own process) -------------------------------------------


async def fake_slack_role(ns: argparse.Namespace) -> None:
    """Serve a fake Slack; on ``go N WORDS`` push N mentions; on ``dump PATH`` write the call log.

    Commands arrive on stdin, one per line; each is answered by one line on stdout.
    """
    from botkit.testing.fake_slack import FakeSlack

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pushed: dict[str, dict[str, Any]] = {}
    async with FakeSlack() as slack:
        if ns.limits == "on":
            slack.limit_rate("chat.update", SLACK_UPDATES_PER_MINUTE, 60.0)
        elif ns.limits == "real":  # every method's published limit (chat.postMessage per channel too)
            slack.enforce_real_limits()
        print(f"READY {slack.api_url}", flush=True)
        while line := (await reader.readline()).decode().strip():
            command, *args = line.split()
            if command == "connected":
                await slack.wait_for_connections(1, timeout=120)
            elif command == "go":
                count, words = int(args[0]), int(args[1])
                for index in range(count):
                    event = slack.mention_event(
                        question(index, words), channel=f"C{index % CHANNELS:08d}", user=f"U{index:08d}"
                    )
                    pushed[f"{event['channel']} {event['ts']}"] = {"index": index, "at": time.monotonic()}
                    await slack.push_event(event)
            elif command == "quiet":  # until no call came for args[0] s (at most args[1] s)
                await _quiet(slack, float(args[0]), float(args[1]))
            elif command == "dump":
                _write_json(args[0], {"replies": _replies(slack, pushed), **_totals(slack)})
                slack.calls.clear()
                pushed = {}
            print(f"OK {command}", flush=True)


async def _quiet(slack: Any, still: float, longest: float) -> None:
    """Wait for botkit's last calls after its final writes (deletions of replaced messages go
    on their own budget, seconds later): until ``still`` seconds pass without a call."""
    deadline = time.monotonic() + longest
    seen = -1
    while time.monotonic() < deadline and len(slack.calls) != seen:
        seen = len(slack.calls)
        await asyncio.sleep(still)


def _write_json(path: str, data: Any) -> None:
    Path(path).write_text(json.dumps(data))


@dataclass
class _CallLog:
    """The fake's calls by where they went: accepted posts per thread and updates per message
    (time, text), a thread's first status line, and every call per thread or message."""

    posts: dict[tuple[str, str], list[tuple[float, str]]] = field(default_factory=dict)
    updates: dict[tuple[str, str], list[tuple[float, str]]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], float] = field(default_factory=dict)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    # a native stream's pieces per message (chat.appendStream, chat.stopStream's markdown_text)
    appends: dict[tuple[str, str], list[tuple[float, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, api_calls: Sequence[Any]) -> _CallLog:
        log = cls()
        for call in api_calls:
            ok = call.status == 200 and not call.error
            args = call.args
            if call.method in ("chat.postMessage", "chat.startStream"):  # a new message in the thread
                where = (str(args.get("channel", "")), str(args.get("thread_ts", "")))
                text = (
                    args.get("text", "") if call.method == "chat.postMessage" else args.get("markdown_text")
                )
                if ok:
                    log.posts.setdefault(where, []).append((call.at, str(text or "")))
            elif call.method in ("chat.appendStream", "chat.stopStream"):
                where = (str(args.get("channel", "")), str(args.get("ts", "")))
                if ok and args.get("markdown_text"):
                    log.appends.setdefault(where, []).append((call.at, str(args["markdown_text"])))
            elif call.method in ("chat.update", "chat.delete"):
                where = (str(args.get("channel", "")), str(args.get("ts", "")))
                if ok and call.method == "chat.update":
                    log.updates.setdefault(where, []).append((call.at, str(args.get("text", ""))))
            elif call.method == "assistant.threads.setStatus":
                where = (str(args.get("channel_id", "")), str(args.get("thread_ts", "")))
                if ok and args.get("status"):
                    log.statuses.setdefault(where, call.at)
            else:
                continue
            log.calls[where] = log.calls.get(where, 0) + 1
        return log


def _replies(slack: Any, pushed: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mention: when it was pushed, and every version the thread showed of the bot's reply,
    timed by the API call that made it: each message's post and accepted updates, over every
    message the bot posted in the thread (a final posted anew, the placeholder it replaced and
    deleted, a long answer's continuations), plus its status line's first setting and the calls
    it took. ``final_at`` is when the last of the messages the thread shows in the end got its
    final text (a final posted anew counts from its post, not from the deletion of the
    placeholder it replaced)."""
    log = _CallLog.of(slack.calls)
    posts, updates, statuses, calls = log.posts, log.updates, log.statuses, log.calls
    out = []
    for key, info in pushed.items():
        channel, thread_ts = key.split()
        thread = (channel, thread_ts)
        shown = [m for m in slack.thread_replies(channel, thread_ts) if m.bot_id]
        gone = [m for m in slack.deleted if m.channel == channel and m.thread_ts == thread_ts and m.bot_id]
        every = sorted(shown + gone, key=lambda m: float(m.ts))
        # The fake numbers its messages in the order they were posted: the thread's n-th
        # accepted post made its n-th message.
        record: dict[str, Any] = {
            **info,
            "versions": [],
            "calls": calls.get(thread, 0),
            "status_at": statuses.get(thread),
        }
        set_at: dict[str, float] = {}
        versions: list[tuple[float, str]] = []
        for (posted_at, text), message in zip(posts.get(thread, []), every, strict=False):
            changes = [(posted_at, text), *updates.get((channel, message.ts), [])]
            for at, piece in log.appends.get((channel, message.ts), []):  # a stream's text grows
                text += piece
                changes.append((at, text))
            versions += changes
            set_at[message.ts] = changes[-1][0]
            record["calls"] += calls.get((channel, message.ts), 0)
        record["versions"] = sorted(versions)
        if shown:
            record["messages"] = len(shown)
            record["final"] = "\n".join(m.text for m in shown)
            final_times = [set_at[m.ts] for m in shown if m.ts in set_at]
            record["final_at"] = max(final_times) if final_times else math.nan
        out.append(record)
    return out


def _totals(slack: Any) -> dict[str, Any]:
    return {
        "rate_limited": sum(1 for c in slack.calls if c.status == 429),
        "calls": len(slack.calls),
        "calls_by_method": dict(collections.Counter(c.method for c in slack.calls)),
        "rate_limited_by_method": dict(collections.Counter(c.method for c in slack.calls if c.status == 429)),
    }


# -- role: the bare loop (own process) ----------------------------------------------------------


def _bare_body(ns: argparse.Namespace, index: int) -> dict[str, Any]:
    """The chat request of stream ``index``, with the sampling botkit's personas send."""
    return {
        "model": ns.model,
        "messages": [{"role": "user", "content": question(index, ns.words)}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": ns.max_tokens,
        # What botkit's personas send (personas/*.md): a server may sample them slower
        # than its defaults (vLLM's top-p path), and that is the server's time, not botkit's.
        "temperature": ns.temperature,
        "top_p": ns.top_p,
    }


async def _bare_stream(
    session: aiohttp.ClientSession, ns: argparse.Namespace, index: int
) -> tuple[int, int, float, float, float]:
    """One stream: its chunks, tokens, time to its first token and to its first answer token
    (after the reasoning), and the clock at its last token."""
    chunks, tokens, sent = 0, 0, time.monotonic()
    first_token = first_answer = last_token = math.nan
    thought = False  # the reasoning is over: a reasoning field was seen, or "</think>" in content
    async with session.post(ns.url + "/chat/completions", json=_bare_body(ns, index)) as response:
        response.raise_for_status()
        async for raw in response.content:
            if raw.startswith(b"data: ") and not raw.startswith(b"data: [DONE]"):
                chunk = json.loads(raw[6:])
                chunks += 1
                if chunk.get("usage"):
                    tokens = chunk["usage"].get("completion_tokens") or tokens
                for choice in chunk["choices"]:
                    delta = choice["delta"]
                    content = delta.get("content") or ""
                    reasoning = delta.get("reasoning") or delta.get("reasoning_content")
                    if content or reasoning:
                        last_token = time.monotonic()
                    if math.isnan(first_token) and (content or reasoning):
                        first_token = time.monotonic() - sent
                    thought = thought or bool(reasoning)
                    if not thought and "</think>" in content:
                        thought, content = True, content.split("</think>", 1)[1]
                    if thought and content.strip() and math.isnan(first_answer):
                        first_answer = time.monotonic() - sent
    return chunks, tokens, first_token, first_answer, last_token


async def bare_role(ns: argparse.Namespace) -> None:
    """N streams read with aiohttp + json.loads, nothing else: prints its CPU, wall, chunks and
    tokens, and per stream the time to its first token and to its first answer token (the
    server's own TTFT as a client sees it: the "direct" figures goal 2 compares botkit with)."""
    import aiohttp

    started_cpu, started = time.process_time(), time.monotonic()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        results = await asyncio.gather(*(_bare_stream(session, ns, i) for i in range(ns.streams)))
    # To the last token (what botkit's figure counts to: its last reply shown and stored).
    lasts = [r[4] for r in results if not math.isnan(r[4])]
    wall = (max(lasts) if lasts else time.monotonic()) - started
    firsts = [r[2] for r in results if not math.isnan(r[2])]
    answers = [r[3] for r in results if not math.isnan(r[3])]
    print(
        json.dumps(
            {
                "cpu": time.process_time() - started_cpu,
                "wall": wall,
                "chunks": sum(r[0] for r in results),
                "tokens": sum(r[1] for r in results),
                "ttft": [pct(firsts, 50), pct(firsts, 95)],
                "first_answer": [pct(answers, 50), pct(answers, 95)],
            }
        ),
        flush=True,
    )


# -- the orchestrator ---------------------------------------------------------------------------


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"  # pip install py-spy puts it in the venv
    return str(beside) if beside.exists() else "py-spy"


def _pinned(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


class Child:
    """A child process with its output in a log file."""

    def __init__(
        self,
        argv: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        stdin: bool = False,
        cwd: Path = REPO,
    ):
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if stdin else self._log,
            stderr=self._log if stdin else subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_path.read_text(errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.log_path.name}: no {pattern!r}; see {self.log_path}")

    def ask(self, line: str) -> str:
        """Send a command line (the fake-slack role) and return its one-line answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode().strip()
        if not answer:
            raise RuntimeError(f"{self.log_path.name} ended; see {self.log_path}")
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Result:
    botkit: str  # which checkout: "this" or --compare's label
    limits: str
    streams: int
    tokens_per_chunk: int
    offered_tokens_per_second: float | None
    replies_ok: int
    failures: list[str]
    tokens: int
    chunks: int
    wall: float
    botkit_cpu: float
    bare_cpu: float
    bare_chunks: int
    bare_wall: float
    server_cpu: float | None
    latency: dict[str, list[float]] = field(default_factory=dict)  # p50, p95, p99 seconds
    api_calls_per_reply: float = 0.0
    rate_limited: int = 0
    # the bare loop's own view of the server ("direct"): tokens it got, and its p50/p95 seconds to
    # the first token and to the first answer token (after the reasoning)
    bare_tokens: int = 0
    bare_ttft: list[float] = field(default_factory=list)
    bare_first_answer: list[float] = field(default_factory=list)
    # the last final write after the last final text shown (a store falling behind shows here),
    # and how much later the 0.1 s poll saw it (what ``wall`` counted before 2026-12-03)
    stored_after_shown: float = math.nan
    poll_lag: float = math.nan
    # botkit's user / system CPU seconds and context switches during the run (:func:`proc_counts`)
    botkit_counts: dict[str, float] = field(default_factory=dict)
    # CPU-s of the fake Slack's process over the same window as botkit's and the stand-in's, and
    # the stand-in's during the bare loop's run: which process on which core was the bottleneck
    fake_cpu: float = math.nan
    bare_server_cpu: float = math.nan
    # seconds each process was runnable but waited for its CPU (other load on the machine)
    waited: dict[str, float] = field(default_factory=dict)
    # every process's busiest 1 s (CPU-s in any 1 s window of the samples, 1.0 = a full core)
    peak_busy: dict[str, float] = field(default_factory=dict)

    @property
    def us_per_chunk(self) -> float:
        return self.botkit_cpu / max(1, self.chunks) * 1e6

    @property
    def bare_us_per_chunk(self) -> float:
        return self.bare_cpu / max(1, self.bare_chunks) * 1e6

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            us_per_chunk=self.us_per_chunk,
            bare_us_per_chunk=self.bare_us_per_chunk,
            ratio=self.us_per_chunk / self.bare_us_per_chunk if self.bare_cpu else math.nan,
            cpu_s_per_1k_tokens=self.botkit_cpu / max(1, self.tokens) * 1000,
            tokens_per_second=self.tokens / self.wall if self.wall else 0.0,
            chunks_per_second=self.chunks / self.wall if self.wall else 0.0,
            direct_tokens_per_second=self.bare_tokens / self.bare_wall if self.bare_wall else 0.0,
        )
        direct = data["direct_tokens_per_second"]
        data["vs_direct"] = data["tokens_per_second"] / direct if direct else math.nan
        return data


def answer_problem(index: int, final: str, words: int) -> str | None:
    """What is wrong with reply ``index``'s final text, or None if it is the stand-in's answer.

    The stand-in answers ``You asked: "<the last user message>"`` plus a fixed line
    (:func:`botkit.llm.standin.make_reply`); the message is the persona's rendering of the
    question, so it is read back from the text, checked to hold this reply's question, and the
    stand-in's answer to it recomputed: any lost, repeated or reordered chunk makes them differ.
    """
    from botkit.llm.standin import make_reply

    lead, tail = 'You asked: "', '"\n\nThis is a deterministic reply'
    if not final.startswith(lead) or tail not in final:
        return f"not the stand-in's answer: {final[:100]!r}"
    asked = final[len(lead) : final.rindex(tail)]
    if question(index, words) not in asked:
        return f"the answer to another question: {asked[-80:]!r}"
    if make_reply(asked).answer != final:
        return f"the final text is not the answer sent: {final[-100:]!r}"
    return None


def analyse(
    dump: dict[str, Any],
    words: int,
    check_answers: bool,
    model_times: dict[int, tuple[float, float]] | None = None,
) -> tuple[dict[str, list[float]], float, int, list[str]]:
    """Latency percentiles, API calls per reply, 429s and the bad replies, from the fake's log.

    ``placeholder`` is the first visible progress (a message, or a status line where the edit
    budget could not stream every reply), ``first_text`` the first version that is answer
    text, ``final`` when the final text was shown, each from the mention's push; with
    ``model_times`` (reply index -> the stand-in's first and last token, :func:`token_times`)
    also ``model_first_token`` (from the push: how long botkit took to get the model going,
    its intake and the request included, plus the server's own time to first token) and
    ``after_last_token``: the final text's lag behind the model (goal 3's 1.5 s)."""
    latency: dict[str, list[float]] = {
        "model_first_token": [],
        "placeholder": [],
        "first_text": [],
        "final": [],
        "after_last_token": [],
    }
    failures: list[str] = []
    for reply in dump["replies"]:
        versions, start, index = reply["versions"], reply["at"], reply["index"]
        if not versions:
            failures.append(f"#{index}: no reply")
            continue
        if model_times and index in model_times:
            latency["model_first_token"].append(model_times[index][0] - start)
        progress = [versions[0][0]] + ([reply["status_at"]] if reply.get("status_at") is not None else [])
        latency["placeholder"].append(min(progress) - start)
        texts = [at for at, text in versions if not text.startswith(_STATUS_PREFIXES)]
        if texts:
            latency["first_text"].append(texts[0] - start)
        final_at = reply.get("final_at", versions[-1][0])
        if not math.isnan(final_at):
            latency["final"].append(final_at - start)
            if model_times and index in model_times:
                latency["after_last_token"].append(final_at - model_times[index][1])
        final = reply.get("final", "")
        problem = answer_problem(index, final, words) if check_answers else None
        if final.startswith("⚠️") or "Something went wrong" in final:
            failures.append(f"#{index}: {final[:120]!r}")
        elif problem is not None:
            failures.append(f"#{index}: {problem}")
    stats = {name: [pct(v, 50), pct(v, 95), pct(v, 99)] for name, v in latency.items()}
    calls = [r["calls"] for r in dump["replies"]]
    return stats, statistics.mean(calls) if calls else 0.0, dump["rate_limited"], failures


_ASKED = re.compile(r"Q(\d+) please summarise")


def token_times(streams: Sequence[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    """Reply index -> when the stand-in sent its first and its last token (the last stream that
    asked it: a retried stream counts from its retry), from ``GET /standin/streams``."""
    times: dict[int, tuple[float, float]] = {}
    for entry in streams:
        if (found := _ASKED.search(entry.get("asked", ""))) and not math.isnan(entry["last_token_at"]):
            times[int(found.group(1))] = (entry["first_token_at"], entry["last_token_at"])
    return times


def last_final_shown(dump: dict[str, Any]) -> float:
    """When the last reply's final text was shown (the fake's monotonic clock: this host's)."""
    times = [r["final_at"] for r in dump["replies"] if not math.isnan(r.get("final_at", math.nan))]
    return max(times, default=math.nan)


def last_final_stored(database: Path) -> float:
    """When the last reply row was finished, on this host's monotonic clock: its ``updated_at``
    (botkit's ``datetime.now(UTC)`` as the write was built) less the wall clock's lead on it."""
    with sqlite3.connect(database) as db:
        (at,) = db.execute(
            "SELECT MAX(updated_at) FROM messages WHERE role = 'assistant' AND status NOT IN ('queued', 'streaming')"
        ).fetchone()
    if at is None:
        return math.nan
    wall = datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
    return wall - (time.time() - time.monotonic())


def reply_end(shown: float, stored: float, polled: float) -> float:
    """The run's end for botkit: its last reply shown *and* stored, from the fake's log and the
    rows' timestamps, as the bare loop's is its last token; the poll's time if neither is known."""
    known = [t for t in (shown, stored) if not math.isnan(t)]
    return max(known) if known else polled


def wait_finished(database: Path, count: int, stall: float, process: subprocess.Popen[bytes]) -> float:
    """Wait until ``count`` reply rows are final, or none became final for ``stall`` seconds
    (a reply stuck ``queued`` is then one of the failures the call log shows); returns when."""
    done, last_change = -1, time.monotonic()
    while time.monotonic() - last_change < stall:
        if process.poll() is not None:
            raise RuntimeError("botkit run ended during the run")
        with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(database, timeout=1) as db:
            now_done = db.execute(
                "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND status NOT IN ('queued', 'streaming')"
            ).fetchone()[0]
            if now_done >= count:
                return time.monotonic()
            if now_done != done:
                done, last_change = now_done, time.monotonic()
        time.sleep(0.1)
    print(
        f"   {count - done} of {count} replies never finished (nothing finished for {stall:.0f} s)",
        flush=True,
    )
    return last_change


def botkit_env(
    ns: argparse.Namespace, api_url: str, base_url: str, database: Path, limits: str, tree: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "adapters")]),
            "BOTKIT_BOT__ADAPTERS": '["slack"]',
            "BOTKIT_LLM__BACKEND": "external",
            "BOTKIT_LLM__BASE_URL": base_url,
            "BOTKIT_LLM__MODEL": ns.model,
            "BOTKIT_LLM__MAX_IN_FLIGHT": str(max(64, ns.max_streams)),
            "BOTKIT_LLM__MAX_IN_FLIGHT_PER_USER": "2",
            "BOTKIT_LLM__MAX_QUEUE": str(max(500, 2 * ns.max_streams)),
            "BOTKIT_LLM__ADAPTIVE_LIMITS": "false",
            "BOTKIT_LLM__MAX_TOKENS": str(ns.max_tokens),
            "BOTKIT_DATABASE__URL": f"sqlite+aiosqlite:///{database}",
            "BOTKIT_SERVER__ENABLED": "false",
            "BOTKIT_PERSONAS__WATCH": "false",
            "BOTKIT_STREAM__EDIT_INTERVAL": str(ns.edit_interval),
            "BOTKIT_SLACK__BOT_TOKEN": "xoxb-fake-bot-token",
            "BOTKIT_SLACK__APP_TOKEN": "xapp-fake-app-token",
            "BOTKIT_SLACK__API_URL": api_url,
        }
    )
    if limits == "off":
        # botkit's own budgets lifted too, every method's: it may post every placeholder at once
        # and edit every reply every interval. (Until 2026-12-02 only chat.update's was, so the
        # placeholders went out at chat.postMessage's ~1/s per channel: 10 channels, ~9 a second,
        # which bounded every figure above ~100 concurrent replies.)
        for method in ("EDITS", "POSTS", "DELETES"):
            env[f"BOTKIT_SLACK__{method}_PER_MINUTE"] = "1000000"
        for method in ("EDIT", "POST"):
            env[f"BOTKIT_SLACK__{method}_BURST"] = "100000"
    extra = dict(item.split("=", 1) for item in ns.botkit_env)
    if "PYTHONPATH" in extra:  # after the tree's own code, so --compare's checkouts stay apart
        extra["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], extra["PYTHONPATH"]])
    env.update(extra)
    return env


class CpuSampler:
    """Processes' CPU from ``/proc``, sampled every ``interval`` s by a thread of the orchestrator:
    what each spent between start and :meth:`stop` (and how long it waited for a CPU), and its
    busiest second (CPU-s in the 1 s window that holds the most: 1.0 is a saturated core, whatever
    the run's average says); ``others`` is the stand-in and the fake together (they share CPU 1)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self._pids, self._interval = pids, interval
        self._first = self._read()
        self._samples: list[tuple[float, dict[str, float]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> dict[str, float]:
        cpus = {name: proc_cpu(pid) for name, pid in self._pids.items()}
        cpus.update({f"{name}_waited": proc_waited(pid) for name, pid in self._pids.items()})
        return cpus

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            with contextlib.suppress(OSError):  # a process that ended: its last sample stands
                before = time.monotonic()
                cpus = self._read()
                after = time.monotonic()
                if after - before < 0.005:  # not descheduled while reading: the time is the reading's
                    self._samples.append(((before + after) / 2, cpus))

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        """CPU-s per process since the start (``NAME_waited``: its seconds runnable but waiting
        for a CPU), and each one's busiest second."""
        self._done.set()
        self._thread.join()
        try:
            last = self._read()
        except OSError:  # one has ended: its last sample stands
            last = self._samples[-1][1] if self._samples else self._first
        spent = {name: last[name] - self._first[name] for name in last}
        peaks = {name: self._peak((name,)) for name in self._pids}
        peaks["others"] = self._peak(tuple(n for n in ("standin", "fake") if n in self._pids))
        return spent, peaks

    def _peak(self, names: tuple[str, ...], window: float = 1.0) -> float:
        def total(cpus: dict[str, float]) -> float:
            return sum(cpus[name] for name in names)

        best, start = 0.0, 0
        for at, cpus in self._samples:
            while at - self._samples[start][0] > window:
                start += 1
            span = at - self._samples[start][0]
            if span >= window * 0.9:
                best = max(best, (total(cpus) - total(self._samples[start][1])) / span)
        return best


class Stack:
    """The model (a stand-in process, or ``--base-url``) for one chunk size and rate."""

    def __init__(
        self, ns: argparse.Namespace, tokens_per_chunk: int, logs: Path, tree: Path | None = None
    ) -> None:
        """``tree``: run the stand-in of that checkout (``--standin-compare``), not this one's."""
        self.standin: Child | None = None
        if ns.base_url:
            self.base_url = ns.base_url.rstrip("/")
            return
        argv = [
            *_pinned(ns.others_cpu), sys.executable, "-W", "ignore::RuntimeWarning", "-m", "botkit.llm.standin",
            "--port", "0", "--tokens-per-chunk", str(tokens_per_chunk),
            "--tokens-per-second", str(ns.tokens_per_second), "--served-model-name", ns.model,
            "--reasoning-field", ns.reasoning_field,
        ]  # fmt: skip
        env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
        self.standin = Child(argv, logs / f"standin-{tokens_per_chunk}.log", env, cwd=tree or REPO)
        root = self.standin.wait_for_log(r"Starting vLLM API server on (http://\S+)").group(1)
        self.base_url = root + "/v1"

    def cpu(self) -> float | None:
        return proc_cpu(self.standin.proc.pid) if self.standin is not None else None

    def token_times(self) -> dict[int, tuple[float, float]] | None:
        """Reply index -> the stand-in's first and last token of it (None against a real server)."""
        if self.standin is None:
            return None
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(root + "/standin/streams", timeout=30) as response:
            return token_times(json.loads(response.read()))

    def close(self) -> None:
        if self.standin is not None:
            self.standin.stop()


def run_bare(ns: argparse.Namespace, stack: Stack, streams: int) -> dict[str, float]:
    """The bare loop on the same server, pinned where botkit runs: its CPU, wall and chunks, and
    the server's CPU meanwhile (``server_cpu``: what the stand-in spent to offer that rate)."""
    server0 = stack.cpu()
    bare = subprocess.run(
        [*_pinned(ns.botkit_cpu), sys.executable, str(Path(__file__).resolve()), "bare",
         "--url", stack.base_url, "--streams", str(streams), "--words", str(ns.words),
         "--model", ns.model, "--max-tokens", str(ns.max_tokens),
         "--temperature", str(ns.temperature), "--top-p", str(ns.top_p)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    floor: dict[str, float] = json.loads(bare.stdout.strip().splitlines()[-1])
    if server0 is not None:
        floor["server_cpu"] = (stack.cpu() or 0.0) - server0
    return floor


def _start_bot(
    ns: argparse.Namespace,
    fake: Child,
    stack: Stack,
    limits: str,
    logs: Path,
    tree: tuple[str, Path],
    tag: str,
) -> tuple[Child, Path]:
    """``botkit run`` from ``tree``'s checkout against the fake Slack's API: the bot and its database."""
    api_url = fake.proc.stdout.readline().decode().split()[1]  # type: ignore[union-attr]
    database = logs / f"botkit-{tag}.db"
    env = botkit_env(ns, api_url, stack.base_url, database, limits, tree[1])
    bot = Child(
        [*_pinned(ns.botkit_cpu), sys.executable, "-m", "botkit.cli", "run"],
        logs / f"botkit-{tag}.log",
        env,
        cwd=tree[1],  # `python -m` puts the working directory first on sys.path: the tree's own code
    )
    return bot, database


def _start_profilers(ns: argparse.Namespace, pid: int, tag: str) -> list[subprocess.Popen[bytes]]:
    """With ``--profile``: py-spy on botkit, a flame graph and its raw samples (none otherwise)."""
    return [
        subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                os.environ.get("BENCH_E2E_PYSPY_RATE", "100"),  # more samples for a short run
                "--nonblocking",
                *(["--gil"] if ns.profile_gil else []),
                "--format",
                fmt,
                "-o",
                str(Path(ns.profile) / f"flame-{tag}.{ext}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt"))
        if ns.profile
    ]


def _start_strace(ns: argparse.Namespace, pid: int, tag: str) -> list[subprocess.Popen[bytes]]:
    """With ``--strace DIR``: ``strace -f -c`` on botkit, its syscalls by count (none otherwise).

    strace slows every syscall down many times: read the counts, not that run's CPU or times."""
    if not ns.strace:
        return []
    out = Path(ns.strace) / f"strace-{tag}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["strace", "-f", "-c", "-p", str(pid), "-o", str(out)]
    return [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def _stop_profilers(profilers: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGINT makes py-spy write its files: wait for them."""
    for profiler in profilers:
        profiler.send_signal(2)
        profiler.wait(60)


def _read_calls(ns: argparse.Namespace, fake: Child, logs: Path, tag: str) -> dict[str, Any]:
    """The fake's call log, once the last edits and deletions have landed."""
    # A last edit after the final write, and the deletions of replaced messages.
    fake.ask(f"quiet {max(0.2, ns.edit_interval) * 2:.2f} 60")
    dump_path = logs / f"calls-{tag}.json"
    fake.ask(f"dump {dump_path}")
    dump: dict[str, Any] = json.loads(dump_path.read_text())
    return dump


def _stored_tokens(database: Path) -> list[int]:
    """Each stored reply's completion tokens (0 where none was recorded)."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT COALESCE(completion_tokens, 0) FROM messages WHERE role = 'assistant'"
        ).fetchall()
    return [r[0] for r in rows]


def run_config(
    ns: argparse.Namespace,
    stack: Stack,
    streams: int,
    tokens_per_chunk: int,
    limits: str,
    logs: Path,
    tree: tuple[str, Path],
    floor: dict[str, float],
) -> Result:
    """One configuration with botkit from ``tree`` (label, checkout): fresh fake Slack, fresh
    ``botkit run`` and database; ``floor`` is the bare loop's run of the same configuration."""
    tag = f"{tree[0]}-{limits}-{streams}x{tokens_per_chunk}"
    me = [sys.executable, str(Path(__file__).resolve())]
    fake = Child(
        [*_pinned(ns.others_cpu), *me, "fake-slack", "--limits", limits], logs / f"fake-{tag}.log", stdin=True
    )
    bot: Child | None = None
    try:
        bot, database = _start_bot(ns, fake, stack, limits, logs, tree, tag)
        fake.ask("connected")
        time.sleep(0.5)  # start-up done (personas, migrations): not counted
        pids = {"botkit": bot.proc.pid, "fake": fake.proc.pid}
        if stack.standin is not None:
            pids["standin"] = stack.standin.proc.pid
        counts0 = proc_counts(bot.proc.pid)
        sampler, started = CpuSampler(pids), time.monotonic()
        profilers = [*_start_profilers(ns, bot.proc.pid, tag), *_start_strace(ns, bot.proc.pid, tag)]
        fake.ask(f"go {streams} {ns.words}")
        polled = wait_finished(database, streams, ns.stall, bot.proc)
        spent, peaks = sampler.stop()
        counts = count_delta(proc_counts(bot.proc.pid), counts0)
        _stop_profilers(profilers)
        dump = _read_calls(ns, fake, logs, tag)
        rows = _stored_tokens(database)
        shown, stored = last_final_shown(dump), last_final_stored(database)
        finished = reply_end(shown, stored, polled)
        model_times = stack.token_times()
        tokens = sum(rows)
        chunks = sum(math.ceil(r / tokens_per_chunk) + 2 for r in rows)  # + role and usage chunks
    finally:
        if bot is not None:
            bot.stop()
        fake.stop()
    latency, calls, limited, failures = analyse(dump, ns.words, not ns.base_url, model_times)
    offered = streams * ns.tokens_per_second if ns.tokens_per_second and not ns.base_url else None
    return Result(
        tree[0], limits, streams, tokens_per_chunk, offered, streams - len(failures), failures,
        tokens, chunks, finished - started, spent["botkit"], floor["cpu"], int(floor["chunks"]), floor["wall"],
        spent.get("standin"), latency, calls, limited, int(floor.get("tokens", 0)),
        list(floor.get("ttft", [])), list(floor.get("first_answer", [])),
        stored - shown, polled - finished, botkit_counts=counts, fake_cpu=spent["fake"],
        bare_server_cpu=floor.get("server_cpu", math.nan), peak_busy=peaks,
        waited={k.removesuffix("_waited"): v for k, v in spent.items() if k.endswith("_waited")},
    )  # fmt: skip


def table(results: Sequence[Result]) -> str:
    head = (
        "| botkit | limits | streams | tok/chunk | ok | botkit µs/chunk | bare µs/chunk | ratio | CPU-s/1k tok | "
        "tok/s (offered) | chunks/s | model's first token p50/p95/p99 s | placeholder p50/p95/p99 s | first text p50/p95/p99 s | "
        "final p50/p95/p99 s | final after last token p50/p95/p99 s | calls/reply | 429s | direct tok/s | vs direct | direct TTFT / first answer p95 s | "
        "last stored after last shown s | CPU-s botkit/stand-in/fake in wall s (s waiting for a CPU) | busiest 1 s botkit/stand-in/fake/stand-in+fake |"
    )
    lines = [head, "|" + "---|" * head.count("|")[:-1] if False else "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        s = r.summary()
        offered = f" ({r.offered_tokens_per_second:,.0f})" if r.offered_tokens_per_second else ""
        lat = {k: "/".join(f"{x:.2f}" for x in v) for k, v in r.latency.items()}
        lines.append(
            f"| {r.botkit} | {r.limits} | {r.streams} | {r.tokens_per_chunk} | {r.replies_ok}/{r.streams} | "
            f"{s['us_per_chunk']:,.0f} | {s['bare_us_per_chunk']:,.0f} | {s['ratio']:.2f} | "
            f"{s['cpu_s_per_1k_tokens']:.3f} | {s['tokens_per_second']:,.0f}{offered} | {s['chunks_per_second']:,.0f} | {lat.get('model_first_token', '-')} | "
            f"{lat['placeholder']} | {lat['first_text']} | {lat['final']} | {lat.get('after_last_token', '-')} | {r.api_calls_per_reply:.1f} | {r.rate_limited} | "
            f"{s['direct_tokens_per_second']:,.0f} | {s['vs_direct']:.2f} | {_p95(r.bare_ttft)} / {_p95(r.bare_first_answer)} | "
            f"{r.stored_after_shown:.3f} | {_cpus(r)} | {_peaks(r)} |"
        )
    return "\n".join(lines)


def _cpus(r: Result) -> str:
    """Each process's CPU-s over the run, beside its wall time: which core was full."""
    server = "-" if r.server_cpu is None else f"{r.server_cpu:.2f}"
    waited = "/".join(f"{r.waited[k]:.2f}" if k in r.waited else "-" for k in ("botkit", "standin", "fake"))
    return f"{r.botkit_cpu:.2f}/{server}/{r.fake_cpu:.2f} in {r.wall:.2f} (waited {waited})"


def _peaks(r: Result) -> str:
    names = ("botkit", "standin", "fake", "others")
    return "/".join(f"{r.peak_busy[k]:.2f}" if k in r.peak_busy else "-" for k in names)


def _p95(pair: Sequence[float]) -> str:
    return f"{pair[1]:.2f}" if len(pair) > 1 and not math.isnan(pair[1]) else "-"


def plot(results: Sequence[Result], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: no plot at {path})")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    bare_drawn: set[tuple[int, str]] = set()
    for tpc in sorted({r.tokens_per_chunk for r in results}):
        for limits, tree in sorted({(r.limits, r.botkit) for r in results}):
            rows = sorted(
                (r for r in results if (r.tokens_per_chunk, r.limits, r.botkit) == (tpc, limits, tree)),
                key=lambda r: r.streams,
            )
            if not rows:
                continue
            xs = [r.streams for r in rows]
            left.plot(
                xs,
                [r.us_per_chunk for r in rows],
                "o-",
                label=f"botkit ({tree}), {tpc} tok/chunk, limits {limits}",
            )
            if (tpc, limits) not in bare_drawn:
                bare_drawn.add((tpc, limits))
                left.plot(
                    xs,
                    [r.bare_us_per_chunk for r in rows],
                    "x--",
                    label=f"bare loop, {tpc} tok/chunk, {limits}",
                )
            right.plot(
                xs,
                [r.latency["final"][1] for r in rows],
                "o-",
                label=f"{tree}, {tpc} tok/chunk, limits {limits}",
            )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent conversations",
        ylabel="CPU µs per SSE chunk",
        title="CPU per chunk",
    )
    right.set(xscale="log", xlabel="concurrent conversations", ylabel="seconds", title="final text p95")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _add_roles(parser: argparse.ArgumentParser) -> None:
    """The internal roles: the processes the orchestrator starts from this same file."""
    sub = parser.add_subparsers(dest="role")
    fake = sub.add_parser("fake-slack", help="(internal) the fake Slack process")
    fake.add_argument("--limits", choices=["on", "real", "off"], default="off")
    bare = sub.add_parser("bare", help="(internal) the bare aiohttp + json.loads loop")
    bare.add_argument("--url", required=True)
    bare.add_argument("--streams", type=int, required=True)
    bare.add_argument("--words", type=int, required=True)
    bare.add_argument("--model", default=MODEL)
    bare.add_argument("--max-tokens", type=int, default=2048)
    bare.add_argument("--temperature", type=float, default=0.6)
    bare.add_argument("--top-p", type=float, default=0.95)


def _add_workload(parser: argparse.ArgumentParser) -> None:
    """What is run: the configurations, the questions and Slack's limits."""
    parser.add_argument("--streams", default="10,100,500", help="concurrent conversations, comma-separated")
    parser.add_argument("--tokens-per-chunk", default="1,8", help="stand-in --stream-interval values")
    parser.add_argument(
        "--limits",
        default="off",
        help="on (Slack's chat.update limit, botkit defaults), real (every method's published limit: "
        "FakeSlack.enforce_real_limits), off, or a list: on,off",
    )
    parser.add_argument(
        "--limited-streams", type=int, default=10, help="with limits on, at most this many streams"
    )
    parser.add_argument(
        "--words",
        type=int,
        default=120,
        help="question words (the reply quotes them: 230 make about 500 tokens)",
    )
    parser.add_argument(
        "--tokens-per-second", type=float, default=0.0, help="per stream; 0 = as fast as the stand-in goes"
    )
    parser.add_argument(
        "--reasoning-field", default="reasoning", choices=["reasoning", "reasoning_content", "none"]
    )
    parser.add_argument("--edit-interval", type=float, default=1.0)


def _add_model(parser: argparse.ArgumentParser) -> None:
    """The model server and the sampling the bare loop sends."""
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument(
        "--temperature", type=float, default=0.6, help="the bare loop's (botkit's personas send 0.6)"
    )
    parser.add_argument("--top-p", type=float, default=0.95, help="the bare loop's (the personas': 0.95)")
    parser.add_argument(
        "--base-url", help="a running vLLM (…/v1): no stand-in is started, answers are not checked"
    )
    parser.add_argument("--model", default=MODEL)


def _add_run(parser: argparse.ArgumentParser) -> None:
    """How botkit runs: stall limit, its environment, CPU pinning, profiling, other checkouts."""
    parser.add_argument(
        "--stall", type=float, default=60.0, help="seconds without a finished reply: give up on the rest"
    )
    parser.add_argument(
        "--botkit-env", action="append", default=[], help="KEY=VALUE for botkit run (repeatable)"
    )
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="botkit on CPU 0, the others on CPU 1 (default: when there are 2+ CPUs)")  # fmt: skip
    parser.add_argument("--profile", help="a folder: py-spy flame graph of botkit per configuration")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (py-spy --gil), so a thread "
        "waiting for the GIL or for its queue (aiosqlite's) is not counted as work",
    )
    parser.add_argument("--strace", metavar="DIR", help="strace -f -c botkit per configuration: "
                        "syscalls by count in DIR/strace-TAG.txt (slows botkit: counts only)")  # fmt: skip
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also run botkit from another checkout (e.g. before=/tmp/base from `git archive main`), "
        "run before this one on the same stand-in and bare loop (repeatable)",
    )
    parser.add_argument(
        "--standin-compare",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also run this botkit against the stand-in of another checkout (its "
        "botkit/llm/standin.py), after this one, alternating; the bare loop reads this one's (repeatable)",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    """Where the figures go, and the CI smoke."""
    parser.add_argument("--json", type=Path)
    parser.add_argument("--png", type=Path)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds: 20 streams, 1 and 8 tokens per chunk; exit 1 on a bad reply",
    )


def _settle(ns: argparse.Namespace) -> None:
    """The orchestrator's derived settings: the smoke's configuration, the lists, the pinning."""
    if ns.smoke:
        ns.streams, ns.tokens_per_chunk, ns.limits, ns.words, ns.edit_interval = (
            "20",
            "1,8",
            "off",
            40,
            0.3,
        )
    ns.stream_list, ns.chunk_list = _ints(ns.streams), _ints(ns.tokens_per_chunk)
    ns.max_streams = max(ns.stream_list, default=1)
    pin = ns.pin if ns.pin is not None else (os.cpu_count() or 1) >= 2
    ns.botkit_cpu, ns.others_cpu = (0, 1) if pin else (None, None)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _add_roles(parser)
    for add in (_add_workload, _add_model, _add_run, _add_output):
        add(parser)
    ns = parser.parse_args(argv)
    if ns.role is None:
        _settle(ns)
    return ns


def _arms(ns: argparse.Namespace) -> list[tuple[str, Path, Path | None]]:
    """Each arm of the run: its label, botkit's checkout, and the stand-in's (None: this one's).
    ``--compare`` arms run another botkit against this stand-in, ``--standin-compare`` arms this
    botkit against another stand-in."""
    arms: list[tuple[str, Path, Path | None]] = []
    for other in ns.compare:
        label, _, path = other.partition("=")
        arms.append((label, Path(path).resolve(), None))
    arms.append(("this", REPO, None))
    for other in ns.standin_compare:
        label, _, path = other.partition("=")
        arms.append((label, REPO, Path(path).resolve()))
    return arms


def orchestrate(ns: argparse.Namespace) -> int:
    logs = Path(tempfile.mkdtemp(prefix="bench_e2e-"))
    if ns.profile:
        Path(ns.profile).mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    trees = _arms(ns)
    configs = [
        (tpc, limits, streams)
        for tpc in ns.chunk_list
        for limits in ns.limits.split(",")
        for streams in ns.stream_list
        if limits == "off" or streams <= ns.limited_streams
    ]
    for number, (tpc, limits, streams) in enumerate(configs):
        # A fresh stand-in for every run (it keeps every request it served: a long-lived one slows
        # down, and whoever ran later would pay for it), and the checkouts' order alternates.
        with contextlib.closing(Stack(ns, tpc, logs)) as stack:
            floor = run_bare(ns, stack, streams)
        for label, tree, standin_tree in trees if number % 2 == 0 else trees[::-1]:
            with contextlib.closing(Stack(ns, tpc, logs, standin_tree)) as stack:
                result = run_config(ns, stack, streams, tpc, limits, logs, (label, tree), floor)
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
            for failure in result.failures[:5]:
                print("   FAILED", failure, flush=True)
    print()
    print(table(results))
    cmd = "python benchmarks/bench_e2e.py " + " ".join(sys.argv[1:])
    print(f"\n{cmd}\nlogs: {logs}")
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps({"command": cmd, "results": [r.summary() for r in results]}, indent=1))
    if ns.png:
        ns.png.parent.mkdir(parents=True, exist_ok=True)
        plot(results, ns.png)
    bad = sum(len(r.failures) for r in results)
    if bad:
        print(f"{bad} replies were incomplete or wrong")
        return 1
    if not ns.json:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    if ns.role == "fake-slack":
        asyncio.run(fake_slack_role(ns))
        return 0
    if ns.role == "bare":
        asyncio.run(bare_role(ns))
        return 0
    return orchestrate(ns)


if __name__ == "__main__":
    sys.exit(main())
