"""Client side of the H200 finding: what one SSE chunk per token costs botkit's own process.

On the H200 (``/work/shared/gpu/README.md``) vLLM's ``--stream-interval 8`` (eight tokens per SSE
chunk) together with ``--api-server-count 4`` doubled aggregate throughput, because per-token
chunks cost CPU on both sides. This benchmark measures the *client* side on this machine, with
the vLLM stand-in as the server:

* Part A, ``LLMClient.stream``: N concurrent streams of ``--tokens`` output tokens each through
  botkit's real client (openai SDK, per-chunk deadlines, reasoning/answer splitting), against a
  stand-in sending 1 token per chunk and one sending 8. Reported per configuration: aggregate
  output tokens/s, SSE chunks/s, client CPU seconds per 1,000 tokens (``time.process_time`` of
  this process), the stand-in's CPU per 1,000 tokens (``/proc/PID/stat``), and the 8-vs-1 ratios.
* Part B, end to end: K concurrent full turns through a TestBot (router -> engine -> store ->
  ReplyStreamer -> RecordingReply) with the production ``edit_interval`` of 1 s, at 1 vs 8
  tokens per chunk: SSE chunks received vs edits made (the coalescing ratio) and CPU per reply.
  Here the stand-in is paced (default 150 tokens/s per stream, about what the H200 gave each of
  128 concurrent streams), so a reply streams for a few seconds, as it would for a user.

Each stand-in runs as a separate process (``python -m botkit.llm.standin``), so its CPU is
not counted as ours, and both stay up for the whole run so that configurations can be
interleaved: every repetition runs every configuration once, alternating which chunk size goes
first. Results are medians over repetitions with the min-max spread; ratios are medians of the
per-repetition (paired) ratios.

Run from the repository root (about 2.5 minutes on 2 cores; part A alone about 50 s)::

    python benchmarks/bench_stream_interval.py
    python benchmarks/bench_stream_interval.py --e2e-replies ''          # part A only
    python benchmarks/bench_stream_interval.py --reps 5 --streams 1,32,128 --e2e-replies 1,32,128
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from botkit.llm.client import Delta, Finished, LLMClient
from botkit.testing import RecordingReply, TestBot

MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
CHUNK_SIZES = (1, 8)
REPO = Path(__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def long_question(words: int) -> str:
    """A question whose deterministic stand-in reply (which quotes it) is long enough."""
    return "Please summarise this: " + " ".join(f"word{i % 50}" for i in range(words))


# -- the stand-in as a separate process ------------------------------------------------------


class StandinProcess:
    """``python -m botkit.llm.standin`` in its own process, on a free port."""

    def __init__(self, tokens_per_chunk: int, tokens_per_second: float, log_dir: Path) -> None:
        self.tokens_per_chunk = tokens_per_chunk
        self.log_path = log_dir / f"standin-chunk{tokens_per_chunk}-tps{tokens_per_second:g}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-W",
                "ignore::RuntimeWarning",  # runpy's "found in sys.modules" warning
                "-m",
                "botkit.llm.standin",
                "--port",
                "0",
                "--tokens-per-chunk",
                str(tokens_per_chunk),
                "--tokens-per-second",
                str(tokens_per_second),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.root_url = self._wait_for_url()
        self.base_url = self.root_url + "/v1"

    def _wait_for_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"Starting vLLM API server on (http://\S+)")
        while time.monotonic() < deadline:
            found = pattern.search(self.log_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"stand-in did not start; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the stand-in process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


async def generation_tokens(root_url: str) -> float:
    """``vllm:generation_tokens_total`` from the stand-in's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(root_url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("vllm:generation_tokens_total"):
            return float(line.rsplit(" ", 1)[1])
    raise RuntimeError("no vllm:generation_tokens_total in /metrics")


async def count_sse_chunks(base_url: str, messages: list[dict[str, str]], max_tokens: int) -> int:
    """SSE ``data:`` chunks (without ``[DONE]``) of one streamed request, read raw."""
    body = {
        "model": MODEL,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
    }
    chunks = 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/chat/completions", json=body) as resp,
    ):
        resp.raise_for_status()
        async for raw in resp.content:
            line = raw.strip()
            if line.startswith(b"data:") and line != b"data: [DONE]":
                chunks += 1
    return chunks


# -- statistics ------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt(values: Sequence[float], digits: int = 0, unit: str = "") -> str:
    med, low, high = spread(values)
    return f"{med:,.{digits}f}{unit} ({low:,.{digits}f}-{high:,.{digits}f})"


def fmt_ratio(values: Sequence[float]) -> str:
    med, low, high = spread(values)
    return f"{med:.2f}x ({low:.2f}-{high:.2f})"


def interleaved(reps: int, sizes: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    """(rep, size, chunk) in run order: each rep runs every config, alternating chunk order."""
    for rep in range(reps):
        order = CHUNK_SIZES if rep % 2 == 0 else tuple(reversed(CHUNK_SIZES))
        for size in sizes:
            for chunk in order:
                yield rep, size, chunk


# -- part A: LLMClient.stream ----------------------------------------------------------------


@dataclass
class StreamSample:
    streams: int
    chunk: int
    rep: int
    wall: float
    client_cpu: float
    server_cpu: float
    tokens: int
    chunks: int
    deltas: int
    ttft_p50: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.wall

    @property
    def client_cpu_per_1k(self) -> float:
        return self.client_cpu / self.tokens * 1000

    @property
    def server_cpu_per_1k(self) -> float:
        return self.server_cpu / self.tokens * 1000


async def one_stream(
    client: LLMClient, messages: list[dict[str, str]], max_tokens: int, started: float
) -> tuple[int, int, float]:
    """(completion tokens, delta events, time to first delta) of one stream."""
    deltas = 0
    ttft = math.nan
    tokens = 0
    async for event in client.stream(messages, temperature=0.6, top_p=0.95, max_tokens=max_tokens):
        if isinstance(event, Delta):
            if deltas == 0:
                ttft = time.perf_counter() - started
            deltas += 1
        elif isinstance(event, Finished):
            tokens = event.completion_tokens or 0
    return tokens, deltas, ttft


async def stream_sample(
    client: LLMClient,
    server: StandinProcess,
    streams: int,
    rep: int,
    messages: list[dict[str, str]],
    max_tokens: int,
    chunks_per_stream: int,
    batches: int = 1,
) -> StreamSample:
    gc.collect()
    server_cpu0 = server.cpu_seconds()
    cpu0 = time.process_time()
    start = time.perf_counter()
    results: list[tuple[int, int, float]] = []
    for _ in range(batches):  # small N: several batches in a row, so a sample is not too short
        batch_start = time.perf_counter()
        results += await asyncio.gather(
            *(one_stream(client, messages, max_tokens, batch_start) for _ in range(streams))
        )
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    server_cpu = server.cpu_seconds() - server_cpu0
    return StreamSample(
        streams=streams,
        chunk=server.tokens_per_chunk,
        rep=rep,
        wall=wall,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        tokens=sum(r[0] for r in results),
        chunks=chunks_per_stream * len(results),
        deltas=sum(r[1] for r in results),
        ttft_p50=statistics.median(r[2] for r in results),
    )


# -- part B: full turns through TestBot ------------------------------------------------------


@dataclass
class TurnSample:
    replies: int
    chunk: int
    rep: int
    wall: float
    client_cpu: float
    server_cpu: float
    tokens: int
    chunks: int
    edits: int
    posts: int
    reply_seconds: list[float] = field(default_factory=list)  # submit to final text, per reply
    start_seconds: list[float] = field(default_factory=list)  # submit to first edit, per reply

    @property
    def coalescing(self) -> float:
        return self.chunks / max(1, self.edits)

    @property
    def cpu_ms_per_reply(self) -> float:
        return self.client_cpu / self.replies * 1000

    @property
    def client_cpu_per_1k(self) -> float:
        return self.client_cpu / self.tokens * 1000


class TimedRecordingReply(RecordingReply):
    """RecordingReply that also notes when its first edit and its end happened."""

    def __init__(self, submitted: float) -> None:
        super().__init__()
        self.submitted = submitted
        self.first_edit_after = math.nan
        self.finished_after = math.nan

    async def edit(self, message_id: str, text: str) -> None:
        await super().edit(message_id, text)
        if math.isnan(self.first_edit_after):
            self.first_edit_after = time.perf_counter() - self.submitted

    async def finish(self) -> None:
        await super().finish()
        self.finished_after = time.perf_counter() - self.submitted


def bench_persona_dir(workdir: Path, max_tokens: int) -> Path:
    """The shipped personas, with the default one capped at ``max_tokens`` output tokens."""
    target = workdir / "personas"
    shutil.copytree(REPO / "personas", target)
    general = target / "general.md"
    text = general.read_text()
    general.write_text(re.sub(r"(?m)^max_tokens: *\d+", f"max_tokens: {max_tokens}", text))
    return target


async def turn_sample(
    bot: TestBot, server: StandinProcess, replies: int, rep: int, question: str, chunks_per_reply: int
) -> TurnSample:
    gc.collect()
    tokens0 = await generation_tokens(server.root_url)
    server_cpu0 = server.cpu_seconds()
    cpu0 = time.process_time()
    start = time.perf_counter()
    recorded = [TimedRecordingReply(start) for _ in range(replies)]
    await asyncio.gather(
        *(
            bot.ask(question, reply=reply, thread=f"bench-{server.tokens_per_chunk}-{rep}-{replies}-{i}")
            for i, reply in enumerate(recorded)
        )
    )
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    server_cpu = server.cpu_seconds() - server_cpu0
    tokens = int(await generation_tokens(server.root_url) - tokens0)
    for reply in recorded:
        if reply.error is not None or not reply.text.startswith("You asked:"):
            raise RuntimeError(f"unexpected reply: {reply.error or reply.text[:200]!r}")
    # Every reply has --tokens tokens (the bench persona caps max_tokens; checked at warm-up), so
    # its SSE framing is the one counted with a raw read at start-up.
    chunks = replies * chunks_per_reply
    return TurnSample(
        replies=replies,
        chunk=server.tokens_per_chunk,
        rep=rep,
        wall=wall,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        tokens=tokens,
        chunks=chunks,
        edits=sum(r.edits for r in recorded),
        posts=sum(sum(1 for c in r.calls if c.method.startswith("post")) for r in recorded),
        reply_seconds=[r.finished_after for r in recorded],
        start_seconds=[r.first_edit_after for r in recorded],
    )


# -- reporting -------------------------------------------------------------------------------


def grouped(samples: Sequence[Any], size_of: Callable[[Any], int]) -> dict[tuple[int, int], list[Any]]:
    groups: dict[tuple[int, int], list[Any]] = {}
    for sample in samples:
        groups.setdefault((size_of(sample), sample.chunk), []).append(sample)
    return groups


def paired_ratios(
    groups: dict[tuple[int, int], list[Any]], size: int, metric: Callable[[Any], float]
) -> list[float]:
    """metric(chunk 8) / metric(chunk 1), per repetition."""
    ones = {s.rep: metric(s) for s in groups[(size, 1)]}
    eights = {s.rep: metric(s) for s in groups[(size, 8)]}
    return [eights[rep] / ones[rep] for rep in sorted(ones) if rep in eights and ones[rep]]


def report_streams(samples: list[StreamSample], sizes: Sequence[int]) -> str:
    groups = grouped(samples, lambda s: s.streams)
    lines = [
        "| streams | tokens/chunk | output tokens/s | SSE chunks/s | client CPU s / 1k tokens "
        "| stand-in CPU s / 1k tokens | client CPU busy | TTFT p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for chunk in CHUNK_SIZES:
            group = groups[(size, chunk)]
            lines.append(
                f"| {size} | {chunk} | {fmt([s.tokens_per_s for s in group])} "
                f"| {fmt([s.chunks_per_s for s in group])} "
                f"| {fmt([s.client_cpu_per_1k for s in group], 3)} "
                f"| {fmt([s.server_cpu_per_1k for s in group], 3)} "
                f"| {fmt([s.client_cpu / s.wall * 100 for s in group], 0, '%')} "
                f"| {fmt([s.ttft_p50 * 1000 for s in group], 1, ' ms')} |"
            )
    lines += [
        "",
        "Ratios, 8 tokens/chunk vs 1 (median of per-repetition ratios, min-max):",
        "",
        "| streams | output tokens/s | SSE chunks/s | client CPU / 1k tokens | stand-in CPU / 1k tokens |",
        "|---|---|---|---|---|",
    ]
    for size in sizes:
        lines.append(
            f"| {size} | {fmt_ratio(paired_ratios(groups, size, lambda s: s.tokens_per_s))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: s.chunks_per_s))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: s.client_cpu_per_1k))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: s.server_cpu_per_1k))} |"
        )
    return "\n".join(lines)


def report_turns(samples: list[TurnSample], sizes: Sequence[int]) -> str:
    groups = grouped(samples, lambda s: s.replies)
    lines = [
        "| replies | tokens/chunk | tokens/reply | SSE chunks/reply | edits/reply | chunks per edit "
        "| client CPU ms / reply | client CPU s / 1k tokens | first edit p50 s | reply done p50 / max s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for chunk in CHUNK_SIZES:
            group = groups[(size, chunk)]
            lines.append(
                f"| {size} | {chunk} | {statistics.median(s.tokens / s.replies for s in group):.0f} "
                f"| {statistics.median(s.chunks / s.replies for s in group):.0f} "
                f"| {fmt([s.edits / s.replies for s in group], 1)} "
                f"| {fmt([s.coalescing for s in group], 0)} "
                f"| {fmt([s.cpu_ms_per_reply for s in group], 1)} "
                f"| {fmt([s.client_cpu_per_1k for s in group], 3)} "
                f"| {fmt([statistics.median(s.start_seconds) for s in group], 2)} "
                f"| {fmt([statistics.median(s.reply_seconds) for s in group], 2)} / "
                f"{fmt([max(s.reply_seconds) for s in group], 2)} |"
            )
    lines += [
        "",
        "Ratios, 8 tokens/chunk vs 1 (median of per-repetition ratios, min-max):",
        "",
        "| replies | client CPU / reply | reply done p50 | reply done max | edits / reply |",
        "|---|---|---|---|---|",
    ]
    for size in sizes:
        lines.append(
            f"| {size} | {fmt_ratio(paired_ratios(groups, size, lambda s: s.cpu_ms_per_reply))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: statistics.median(s.reply_seconds)))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: max(s.reply_seconds)))} "
            f"| {fmt_ratio(paired_ratios(groups, size, lambda s: s.edits / s.replies))} |"
        )
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Results:
    command: str
    date: str
    machine: str
    stream_samples: list[StreamSample] = field(default_factory=list)
    turn_samples: list[TurnSample] = field(default_factory=list)


def sizes_arg(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


async def run(args: argparse.Namespace, results: Results) -> None:
    messages = [{"role": "user", "content": long_question(args.question_words)}]
    with tempfile.TemporaryDirectory(prefix="botkit-bench-") as tmp:
        workdir = Path(tmp)
        fast: dict[int, StandinProcess] = {}
        paced: dict[int, StandinProcess] = {}
        try:
            for chunk in CHUNK_SIZES:
                fast[chunk] = StandinProcess(chunk, 0.0, workdir)
                if args.e2e_replies:
                    paced[chunk] = StandinProcess(chunk, args.e2e_tokens_per_second, workdir)
            # Exact SSE framing of one reply of --tokens tokens, read raw from the stand-in.
            chunks_per_reply = {
                chunk: await count_sse_chunks(server.base_url, messages, args.tokens)
                for chunk, server in fast.items()
            }
            print(f"SSE chunks per {args.tokens}-token reply: {chunks_per_reply}", flush=True)
            if args.streams:
                await run_streams(args, results, fast, messages, chunks_per_reply)
            if args.e2e_replies:
                await run_turns(args, results, paced, workdir, chunks_per_reply)
        finally:
            for server in [*fast.values(), *paced.values()]:
                server.stop()


async def run_streams(
    args: argparse.Namespace,
    results: Results,
    servers: dict[int, StandinProcess],
    messages: list[dict[str, str]],
    chunks_per_stream: dict[int, int],
) -> None:
    clients = {chunk: LLMClient(server.base_url, MODEL) for chunk, server in servers.items()}
    try:
        for chunk, server in servers.items():
            await stream_sample(clients[chunk], server, 4, -1, messages, args.tokens, 0)  # warm-up
        for rep, size, chunk in interleaved(args.reps, args.streams):
            batches = math.ceil(args.min_streams / size)
            sample = await stream_sample(
                clients[chunk],
                servers[chunk],
                size,
                rep,
                messages,
                args.tokens,
                chunks_per_stream[chunk],
                batches,
            )
            if sample.tokens != batches * size * args.tokens:
                raise RuntimeError(f"expected {batches * size * args.tokens} tokens, got {sample.tokens}")
            results.stream_samples.append(sample)
            print(
                f"  A rep {rep} streams {size:>4} chunk {chunk}: {sample.tokens_per_s:8,.0f} tok/s "
                f"{sample.chunks_per_s:8,.0f} chunks/s  client {sample.client_cpu_per_1k:.3f} CPU s/1k tok",
                flush=True,
            )
    finally:
        for client in clients.values():
            await client.aclose()


async def run_turns(
    args: argparse.Namespace,
    results: Results,
    servers: dict[int, StandinProcess],
    workdir: Path,
    chunks_per_reply: dict[int, int],
) -> None:
    personas = bench_persona_dir(workdir, args.tokens)
    question = long_question(args.question_words)
    bots: dict[int, TestBot] = {}
    async with contextlib.AsyncExitStack() as stack:
        for chunk, server in servers.items():
            botdir = workdir / f"bot-chunk{chunk}"
            botdir.mkdir()
            # TestBot starts an in-process stand-in of its own; the llm.base_url override points
            # the bot at the separate process instead (checked below: the local one gets nothing).
            bots[chunk] = await stack.enter_async_context(
                TestBot(
                    botdir,
                    settings={
                        "llm": {"base_url": server.base_url},
                        "stream": {"edit_interval": args.edit_interval},
                        "personas": {"dir": str(personas)},
                    },
                )
            )
            warm_up = await turn_sample(bots[chunk], server, 2, -1, question, chunks_per_reply[chunk])
            if warm_up.tokens != 2 * args.tokens:
                raise RuntimeError(f"replies of {warm_up.tokens / 2} tokens, not {args.tokens}")
        for rep, size, chunk in interleaved(args.reps, args.e2e_replies):
            sample = await turn_sample(
                bots[chunk], servers[chunk], size, rep, question, chunks_per_reply[chunk]
            )
            results.turn_samples.append(sample)
            print(
                f"  B rep {rep} replies {size:>4} chunk {chunk}: {sample.cpu_ms_per_reply:7.1f} CPU ms/reply "
                f"{sample.edits / size:5.1f} edits/reply {sample.coalescing:6.0f} chunks/edit "
                f"done p50 {statistics.median(sample.reply_seconds):5.2f} s max {max(sample.reply_seconds):5.2f} s",
                flush=True,
            )
        for bot in bots.values():
            if bot.standin.requests:
                raise RuntimeError("the in-process stand-in was used; the benchmark is misconfigured")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every configuration")
    parser.add_argument("--streams", type=sizes_arg, default=[1, 32, 128], help="part A concurrency")
    parser.add_argument(
        "--e2e-replies", type=sizes_arg, default=[1, 128], help="part B concurrency ('' skips)"
    )
    parser.add_argument(
        "--min-streams",
        type=int,
        default=32,
        help="part A: streams per sample at least (N < this runs ceil(this/N) batches in a row)",
    )
    parser.add_argument("--tokens", type=int, default=512, help="output tokens per stream")
    parser.add_argument("--question-words", type=int, default=600, help="long enough to fill --tokens")
    parser.add_argument(
        "--e2e-tokens-per-second",
        type=float,
        default=150.0,
        help="part B stand-in pace per stream (part A always runs at full speed)",
    )
    parser.add_argument("--edit-interval", type=float, default=1.0, help="part B [stream] edit_interval")
    parser.add_argument("--json", type=Path, help="also write all samples here")
    args = parser.parse_args(argv)

    results = Results(
        command="python benchmarks/bench_stream_interval.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}",
    )
    print(f"# {results.command}\n# {results.date}  {results.machine}", flush=True)
    started = time.perf_counter()
    asyncio.run(run(args, results))
    print(f"\nTotal {time.perf_counter() - started:.0f} s\n")
    if results.stream_samples:
        print(f"## A. LLMClient.stream, {args.tokens} output tokens per stream (median, min-max)\n")
        print(report_streams(results.stream_samples, args.streams) + "\n")
    if results.turn_samples:
        print(
            f"## B. Full turns, {args.e2e_tokens_per_second:g} tokens/s per stream, "
            f"edit_interval {args.edit_interval:g} s (median, min-max)\n"
        )
        print(report_turns(results.turn_samples, args.e2e_replies))
    if args.json:
        data = asdict(results)
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
