"""The spool's cost on the reply path: the final view's intent and the final write, per turn.

    python benchmarks/bench_spool.py [--turns 200] [--answer-chars 900] [--compare before=DIR] [--json]

Per turn, in the order the pipeline does it, on a real SQLite file and a real spool directory:

- ``intent``: spooling the final view's intent (``WriteSpool.save`` with ``shown``), which the
  final view's first request waits for: the time added before that request can go out;
- ``land``: the final write (``FinalWrites.land``: spooled, stored in SQLite, the record
  removed), which the thread's next turn waits for;
- ``CPU of a landed turn's records``: the process's CPU (every thread, the kernel's file work
  included) for what the usual turn spools: its intent, removed once its final write landed;
- ``loop``: the time the event loop's thread spends inside the spool's calls for one turn's
  records (the intent, the final write over it, its removal; no database, a second pass of as
  many turns): how long the spool blocks the loop, i.e. what every other reply, ack and
  heartbeat waits meanwhile (the older spool writes on the loop; the newer one hands the work
  to its thread).

``--compare before=DIR`` runs this same script against the botkit checkout in DIR (``git
archive main | tar -x -C /tmp/base``) in a subprocess of the same run, then against this one,
and prints both side by side. The script speaks both spool APIs (the older one is synchronous).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class _Bench:
    """One run's store, spool and samples; one method per thing measured."""

    def __init__(self, store: Any, spool: Any, answer_chars: int) -> None:
        from botkit.events import ConversationKey
        from botkit.pipeline.recorder import FinalWrites
        from botkit.store.spool import WriteSpool

        self.store, self.spool = store, spool
        self.writes = FinalWrites(store, retry_timeout=60, spool=spool)
        self.durable = inspect.iscoroutinefunction(WriteSpool.save)  # the fsynced spool, off the loop
        land = inspect.signature(self.writes.land).parameters
        self.covered = {"covered": True} if "covered" in land else {}
        self.key = ConversationKey("bench", "W1", "C1", "t1")
        self.where = (self.key.platform, self.key.workspace, self.key.channel, self.key.thread)
        self.answer = ("lorem ipsum " * answer_chars)[:answer_chars]
        self.values = {"status": "complete", "answer": self.answer, "reasoning": None}
        self.samples: dict[str, list[float]] = {"intent": [], "land": [], "loop": []}

    def _write(self, turn: int, *shown: str) -> Any:
        from botkit.store.spool import SpooledWrite

        return SpooledWrite(turn, self.where, self.values, shown or None)

    async def one_turn(self, conversation: int, index: int) -> None:
        """A turn as the pipeline runs it: its row, the intent (timed), the final write (timed)."""
        ids = await self.store.start_turn(
            conversation, user_text="q", user_id="u", delivery_id=f"d{index}",
            persona_name="general", persona_hash="h", model="m", status="streaming",
        )  # fmt: skip
        turn = ids.assistant_message_id
        intent = self._write(turn, self.answer)
        started = time.perf_counter()
        if self.durable:
            await self.spool.save(intent)
        else:
            self.spool.save(intent)
        shown = time.perf_counter()
        assert await self.writes.land(self.key, turn, self.values, **self.covered)
        self.samples["intent"].append(shown - started)
        self.samples["land"].append(time.perf_counter() - shown)

    async def spool_only(self, index: int) -> None:
        """The spool's own records of one turn (intent, final write over it, removal), no
        database: the time the event loop's thread spends in the spool's calls, i.e. is blocked
        (the new spool's calls only hand the work to its thread; its removal, a coroutine that
        does the same, is not counted)."""
        turn, spool, blocked = 1_000_000 + index, self.spool, 0.0
        for entry in (self._write(turn, self.answer), self._write(turn)):
            started = time.perf_counter()
            pending = spool.save_soon(entry) if self.durable else spool.save(entry)
            blocked += time.perf_counter() - started
            if pending is not None:
                await pending
        started = time.perf_counter()
        removal = spool.discard(turn)
        blocked += 0.0 if self.durable else time.perf_counter() - started
        if removal is not None:
            await removal
        self.samples["loop"].append(blocked)

    async def usual_records(self, count: int) -> float:
        """CPU seconds per turn of what a landed turn spools: its intent, then its removal."""
        started = time.process_time()
        for index in range(count):
            turn = 2_000_000 + index
            await self.spool.save(self._write(turn, self.answer))
            removal = self.spool.discard_soon(turn)
        await asyncio.wrap_future(removal)
        return (time.process_time() - started) / count

    def record_bytes(self) -> int:
        return len(
            json.dumps(
                {
                    "turn": 1,
                    "key": list(self.where),
                    "values": {"answer": self.answer},
                    "shown": [self.answer],
                }
            )
        )


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p90_us": round(ordered[int(len(ordered) * 0.9)] * 1e6, 1),
    }


async def measure(turns: int, answer_chars: int, directory: Path) -> dict[str, Any]:
    from botkit.store import ConversationStore
    from botkit.store.spool import WriteSpool

    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    store = await ConversationStore.open(url, migrate=True)
    spool = WriteSpool.for_database(url, None)
    assert spool is not None
    bench = _Bench(store, spool, answer_chars)
    key = bench.key
    conversation = await store.conversation_id(key.platform, key.workspace, key.channel, key.thread)
    try:
        # Timed with the loop otherwise idle (a ticker would hold the GIL the spool's thread needs),
        for index in range(turns):
            await bench.one_turn(conversation, index)
        # then the spool's records alone: how long each blocks the loop.
        for index in range(turns):
            await bench.spool_only(index)
        # then a usual turn's records (the intent, removed once the final write landed): the
        # process's CPU for them, every thread and the kernel's file work included.
        cpu = await bench.usual_records(turns) if hasattr(spool, "discard_soon") else None
    finally:
        await store.close()
    assert spool.entries() == []
    return {
        "spool": "fsynced, off the loop" if bench.durable else "not fsynced, on the loop",
        "turns": turns,
        "intent_record_bytes": bench.record_bytes(),
        "usual_records_cpu_us": None if cpu is None else round(cpu * 1e6, 1),
        **{name: _summary(values) for name, values in bench.samples.items()},
    }


def _run_here(turns: int, answer_chars: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-spool-", dir=os.environ.get("BENCH_DIR")) as directory:
        return asyncio.run(measure(turns, answer_chars, Path(directory)))


def _run_in(checkout: Path, turns: int, answer_chars: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    out = subprocess.run(
        [sys.executable, __file__, "--turns", str(turns), "--answer-chars", str(answer_chars), "--json"],
        env=env, cwd=checkout, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--answer-chars", type=int, default=900)  # an intent record of ~2 KB
    parser.add_argument("--compare", metavar="before=DIR")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(_run_here(args.turns, args.answer_chars)))
        return
    results: dict[str, dict[str, Any]] = {}
    if args.compare:
        label, _, directory = args.compare.partition("=")
        results[label] = _run_in(Path(directory), args.turns, args.answer_chars)
    results["this"] = _run_in(Path(__file__).resolve().parent.parent, args.turns, args.answer_chars)
    print(f"{args.turns} turns, intent record {next(iter(results.values()))['intent_record_bytes']} bytes")
    for label, result in results.items():
        print(
            f"{label:>8} ({result['spool']}): "
            + ", ".join(
                f"{name} median {result[name]['median_us']} µs (p90 {result[name]['p90_us']})"
                for name in ("intent", "land", "loop")
            )
            + f", CPU of a landed turn's records {result.get('usual_records_cpu_us')} µs"
        )


if __name__ == "__main__":
    main()
