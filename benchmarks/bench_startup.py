"""Start-up time of ``botkit chat``: the import of ``botkit.cli`` and the time to the first prompt.

Measured, never asserted (tests only check which modules ``import botkit.cli`` pulls in). Each
repetition runs, in a fresh empty folder (so SQLite is created and migrated as on a first run):

- ``python -c 'import botkit.cli'``: wall time of the whole interpreter (what ``botkit --help`` costs);
- ``botkit chat`` in a pseudo-terminal: wall time until the prompt ``you>`` is on the screen, i.e.
  the stand-in is up, the database migrated, personas and plugins loaded and the adapter waiting;
- ``echo 'What is 2+2?' | botkit chat``: wall time to the first byte on stderr (the "model backend"
  line) and to the answer on stdout.

Run from the repository root in the project's venv::

    python benchmarks/bench_startup.py            # 5 repetitions, about 30 s on 2 cores
    python -X importtime -c 'import botkit.cli' 2>&1 | sort -t'|' -k2 -n | tail   # where import time goes
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"})
    return env


def import_cli(_: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import botkit.cli"], check=True, env=_env())
    return time.perf_counter() - start


def first_prompt(folder: Path) -> float:
    """Seconds from spawning ``botkit chat`` on a terminal to ``you>`` appearing on it."""
    leader, follower = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "botkit.cli", "chat"],
        stdin=follower, stdout=follower, stderr=follower, cwd=folder, env=_env(), close_fds=True,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        while b"you>" not in seen:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise RuntimeError(f"no prompt after 60 s: {seen[-500:]!r}")
            seen += os.read(leader, 65536)
        return time.perf_counter() - start
    finally:
        process.kill()
        process.wait()
        os.close(leader)


def piped(folder: Path) -> tuple[float, float]:
    """Seconds to the first byte on stderr and to the whole answer of one piped question."""
    question, writer = os.pipe()
    os.write(writer, b"What is 2+2?\n")
    os.close(writer)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "botkit.cli", "chat"],
        stdin=question, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder, env=_env(),
    )  # fmt: skip
    os.close(question)
    assert process.stderr is not None
    process.stderr.read(1)
    first_line = time.perf_counter() - start
    process.communicate(timeout=120)
    return first_line, time.perf_counter() - start


def _summary(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s ({min(samples):.2f}-{max(samples):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    probes: dict[str, Callable[[Path], float]] = {
        "python -c 'import botkit.cli'": import_cli,
        "botkit chat on a terminal: to the prompt": first_prompt,
    }
    for _ in range(args.reps):
        for name, probe in probes.items():
            with tempfile.TemporaryDirectory() as folder:
                results.setdefault(name, []).append(probe(Path(folder)))
        with tempfile.TemporaryDirectory() as folder:
            first, done = piped(Path(folder))
        results.setdefault("echo ... | botkit chat: first stderr line", []).append(first)
        results.setdefault("echo ... | botkit chat: answer printed", []).append(done)
    print(f"median (min-max) of {args.reps} runs, each in a fresh folder")
    print("| what | wall time |\n|---|---|")
    for name, samples in results.items():
        print(f"| {name} | {_summary(samples)} |")


if __name__ == "__main__":
    main()
