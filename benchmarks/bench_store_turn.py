"""The store's work per turn: CPU, statements and commits, on SQLite and PostgreSQL.

    python benchmarks/bench_store_turn.py [--turns 400] [--concurrency 50] [--checkpoints 3]
        [--db sqlite,postgresql] [--postgres-dsn postgresql://postgres@127.0.0.1:5432/test]
        [--compare before=DIR] [--json]

A turn here is what the pipeline asks of the store for one reply, in its order: the intake
(``accept``: conversation, delivery claim, question, queued reply row), the turn adopting those
rows (as ``streaming`` where the code can, else followed by ``mark_streaming``), the history read (skipped where the code skips it: a new thread's
first turn), ``--checkpoints`` rounds of checkpoints while all the turns of a wave stream (one
executemany per round where the code batches them, one UPDATE per turn where it does not), and
the final write. Half the turns open a thread, half follow up in one. Statements are counted by
a ``before_cursor_execute`` listener (an executemany counts once), commits by a ``commit``
listener on PostgreSQL; on SQLite all three at the driver, with round trips to aiosqlite's
connection thread (``round_trips_per_turn``: every call into it, see
``botkit/testing/sqlcount.py``, loaded from this checkout for every arm, so the counts mean the
same for the code under ``--compare``; statements run on the driver directly do not pass
SQLAlchemy's events); CPU is this process's (``time.process_time``: the event loop, SQLAlchemy, the driver,
aiosqlite's thread), not the PostgreSQL server's.

``--compare before=DIR`` runs this same script against the botkit checkout in DIR (``git
archive main | tar -x -C /tmp/base``) in a subprocess of the same run, one database kind after
the other, and prints both side by side with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

DEFAULT_DSN = os.environ.get("BOTKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _turn_rows(store: Any, index: int, thread: str) -> tuple[Any, bool]:
    ids = await store.accept(
        "bench",
        f"delivery-{index}",
        ("W1", f"C{index % 10}", thread),
        user_text=f"question {index}",
        user_id="U1",
    )
    # The code that can adopt a turn first in its thread as streaming does (every turn here is:
    # a follow-up starts after its thread's first turn finished); the older code marks it after.
    adopt_streams = "streaming" in inspect.signature(store.adopt_inbox).parameters
    await store.adopt_inbox(
        ids,
        user_text=f"question {index}",
        persona_name="general",
        persona_hash="h",
        model="m",
        platform_message_ids=[f"ts-{index}"],
        **({"streaming": True} if adopt_streams else {}),
    )
    if not adopt_streams:
        await store.mark_streaming(ids.assistant_message_id)
    if not getattr(ids, "new_conversation", False):  # the code that knows a new thread skips it
        await store.history(ids.conversation_id)
    return ids, True


async def _wave(store: Any, indexes: list[int], checkpoints: int, follow_up: bool) -> None:
    started = await asyncio.gather(*(_turn_rows(store, i, f"T{i - 1 if follow_up else i}") for i in indexes))
    turns = [ids for ids, _ in started]
    batched = hasattr(store, "checkpoints")
    for round_ in range(checkpoints):
        rows = [(t.assistant_message_id, f"partial answer {round_} " * 20, None) for t in turns]
        if batched:
            await store.checkpoints(rows)
        else:
            await asyncio.gather(*(store.checkpoint(i, answer=a, reasoning=r) for i, a, r in rows))
    await asyncio.gather(
        *(
            store.finish_turn(
                t.assistant_message_id, status="complete", answer="the answer " * 40, reasoning=None
            )
            for t in turns
        )
    )


def _driver_counter() -> Any:
    """``counting_sqlite`` from THIS checkout's botkit/testing/sqlcount.py (it needs only
    aiosqlite), so an older checkout under --compare is counted the same way."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "botkit" / "testing" / "sqlcount.py"
    spec = importlib.util.spec_from_file_location("_bench_sqlcount", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module.counting_sqlite


async def measure(url: str, turns: int, concurrency: int, checkpoints: int) -> dict[str, Any]:
    import contextlib

    from sqlalchemy import event

    from botkit.store import ConversationStore

    store = await ConversationStore.open(url, migrate=True)
    counts: Counter[str] = Counter()
    sqlite = url.startswith("sqlite")

    def on_execute(*_args: Any) -> None:
        counts["statements"] += 1

    def on_commit(_conn: Any) -> None:
        counts["commits"] += 1

    try:
        await _wave(store, [10**6 + i for i in range(concurrency)], 1, False)  # warm the caches
        engine = store._engine.sync_engine
        if not sqlite:
            event.listen(engine, "before_cursor_execute", on_execute)
            event.listen(engine, "commit", on_commit)
        with _driver_counter()() if sqlite else contextlib.nullcontext() as driver:
            cpu, wall = time.process_time(), time.perf_counter()
            done = 0
            while done < turns:
                size = min(concurrency, (turns - done) // 2 or 1)
                first = list(range(done, done + 2 * size, 2))
                await _wave(store, first, checkpoints, False)  # opens threads T{i}
                await _wave(store, [i + 1 for i in first], checkpoints, True)  # follows up in T{i}
                done += 2 * size
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if driver is not None:
            counts = driver.counts
    finally:
        await store.close()
    result = {
        "turns": done,
        "cpu_ms_per_turn": round(cpu * 1000 / done, 2),
        "statements_per_turn": round(counts["statements"] / done, 2),
        "commits_per_turn": round(counts["commits"] / done, 2),
        "wall_s": round(wall, 2),
    }
    if sqlite:
        result["round_trips_per_turn"] = round(counts["round_trips"] / done, 2)
    return result


async def _postgres_database(dsn: str, drop: str | None = None) -> str:
    import asyncpg
    from sqlalchemy.engine import URL, make_url

    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        if drop is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            return drop
        name = f"bench_store_turn_{secrets.token_hex(4)}"
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = make_url(dsn)
    url = URL.create(
        "postgresql+asyncpg", username=base.username, host=base.host, port=base.port, database=name
    )
    return url.render_as_string(hide_password=False)


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
            return await measure(url, args.turns, args.concurrency, args.checkpoints)
    url = await _postgres_database(args.postgres_dsn)
    try:
        return await measure(url, args.turns, args.concurrency, args.checkpoints)
    finally:
        from sqlalchemy.engine import make_url

        await _postgres_database(args.postgres_dsn, drop=make_url(url).database)


def _in_checkout(directory: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """This script, run against the botkit in ``directory`` (its own process), for one db kind."""
    env = {**os.environ, "PYTHONPATH": f"{directory}{os.pathsep}{directory / 'adapters'}"}
    command = [sys.executable, __file__, "--db", kind, "--json", "--turns", str(args.turns)]
    command += ["--concurrency", str(args.concurrency), "--checkpoints", str(args.checkpoints)]
    command += ["--postgres-dsn", args.postgres_dsn]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=directory).stdout
    return dict(json.loads(out)[kind])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50, help="turns streaming at once")
    parser.add_argument("--checkpoints", type=int, default=3, help="checkpoint rounds per turn")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in kinds:
        for spec in args.compare:
            name, _, directory = spec.partition("=")
            results.setdefault(name, {})[kind] = _in_checkout(Path(directory).resolve(), kind, args)
        results.setdefault("this", {})[kind] = asyncio.run(run_one(kind, args))
    if args.json:
        print(json.dumps(results["this"] if not args.compare else results))
        return 0
    print(f"{args.turns} turns, {args.concurrency} at once, {args.checkpoints} checkpoint rounds each")
    for kind in kinds:
        columns = ("cpu_ms_per_turn", "statements_per_turn", "commits_per_turn")
        if kind == "sqlite":
            columns += ("round_trips_per_turn",)
        print(f"\n{kind}:")
        print(f"  {'checkout':<10}" + "".join(f"{c:>22}" for c in columns))
        for name, per_kind in results.items():
            print(f"  {name:<10}" + "".join(f"{per_kind[kind][c]:>22}" for c in columns))
        if args.compare:
            base = results[args.compare[0].partition("=")[0]][kind]
            ratios = "".join(f"{results['this'][kind][c] / base[c]:>22.2f}" for c in columns)
            print(f"  {'ratio':<10}" + ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
