"""What the parts of a store write cost in CPU, one at a time, on SQLite (issue 11, branch perf11).

    python benchmarks/bench_store_parts.py [--n 3000] [--loop uvloop|asyncio]

Three figures, each the CPU of this process (``time.process_time``: the event loop and
aiosqlite's thread) divided by the count, one call after the other:

* ``round_trip``: ``aiosqlite.Connection.execute_fetchall("SELECT 1")``: one hop to the
  connection's thread and back, the floor of any statement on SQLite;
* ``statement``: one reply-row UPDATE ... RETURNING of the store (``_UPDATE_ASSISTANT``, as a
  final write runs it), inside an open transaction;
* ``transaction``: ``ConversationStore.mark_streaming`` (the same statement in a transaction of
  its own: the gate, checkout, begin, commit, close) less ``statement``: what a transaction costs
  beyond its statement, which group commit (``botkit/store/group.py``) shares between turns.

A shared machine moves these by 2x between runs: compare figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any


async def measure(n: int) -> dict[str, float]:
    import aiosqlite

    from botkit.store import ConversationStore
    from botkit.store.models import utcnow
    from botkit.store.store import _UPDATE_ASSISTANT

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "parts.db"
        async with aiosqlite.connect(path) as raw:
            cpu = time.process_time()
            for _ in range(n):
                await raw.execute_fetchall("SELECT 1", [])
            round_trip = (time.process_time() - cpu) / n
        store = await ConversationStore.open(f"sqlite+aiosqlite:///{path}", migrate=True)
        try:
            ids = await store.accept("bench", "d1", ("W", "C", "T"), user_text="q", user_id="U")
            assert ids is not None
            row = ids.assistant_message_id
            cpu = time.process_time()
            for _ in range(n):
                await store.mark_streaming(row)
            alone = (time.process_time() - cpu) / n
            params: dict[str, Any] = {"status": "streaming", "b_id": row}
            async with store.sessions.connect() as connection:
                cpu = time.process_time()
                for _ in range(n):
                    await _UPDATE_ASSISTANT.first(connection, {**params, "updated_at": utcnow()})
                statement = (time.process_time() - cpu) / n
        finally:
            await store.close()
    return {
        "round_trip_us": round(round_trip * 1e6, 1),
        "statement_us": round(statement * 1e6, 1),
        "transaction_us": round((alone - statement) * 1e6, 1),
        "statement_in_own_transaction_us": round(alone * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(measure(args.n))
    else:
        result = asyncio.run(measure(args.n))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
