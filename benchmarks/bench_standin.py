"""The vLLM stand-in's own ceiling: how many tokens a second it can offer, read by the bare loop.

``bench_e2e.py`` pins botkit to CPU 0 and the stand-in, the fake Slack and the bare loop's server
to CPU 1; so botkit can never be measured above what the stand-in produces on its share of one
core. This measures that share alone: one stand-in process pinned where ``bench_e2e.py`` pins it
(CPU 1), and ``bench_e2e.py``'s own ``bare`` role (aiohttp + ``json.loads``, nothing else) pinned
where botkit runs (CPU 0), reading N streams at once at full speed. Reported per run: tokens/s and
chunks/s the bare loop got (to its last token), the stand-in's CPU-s over that wall time (``/proc``:
1.0 = a saturated core), its CPU per SSE chunk, and the bare loop's.

``--compare LABEL=PATH`` also runs the stand-in of another checkout (e.g. ``git archive`` of main),
alternating which goes first, so before and after are measured in one run::

    python benchmarks/bench_standin.py --streams 500 --tokens-per-chunk 8 --reps 3 \\
        --compare before=/tmp/standin-base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_e2e import MODEL, REPO, Child, _pinned, proc_cpu, proc_waited


def start_standin(tree: Path, tokens_per_chunk: int, cpu: int | None, log: Path) -> tuple[Child, str]:
    """A stand-in from ``tree``'s checkout at full speed, pinned to ``cpu``: the process and its URL."""
    argv = [
        *_pinned(cpu), sys.executable, "-W", "ignore::RuntimeWarning", "-m", "botkit.llm.standin",
        "--port", "0", "--tokens-per-chunk", str(tokens_per_chunk), "--served-model-name", MODEL,
        "--reasoning-field", "reasoning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    child = Child(argv, log, env, cwd=tree)
    root = child.wait_for_log(r"Starting vLLM API server on (http://\S+)").group(1)
    return child, root + "/v1"


def one_run(ns: argparse.Namespace, tree: Path, streams: int, tpc: int, logs: Path) -> dict[str, Any]:
    """One fresh stand-in, the bare loop's N streams on it: what each side spent, and the rate."""
    child, url = start_standin(tree, tpc, ns.others_cpu, logs / f"standin-{tpc}.log")
    try:
        before, waited = proc_cpu(child.proc.pid), proc_waited(child.proc.pid)
        bare = subprocess.run(
            [*_pinned(ns.botkit_cpu), sys.executable, str(REPO / "benchmarks" / "bench_e2e.py"), "bare",
             "--url", url, "--streams", str(streams), "--words", str(ns.words)],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
        server_cpu = proc_cpu(child.proc.pid) - before
        waited = proc_waited(child.proc.pid) - waited
    finally:
        child.stop()
    floor: dict[str, Any] = json.loads(bare.stdout.strip().splitlines()[-1])
    wall, chunks = floor["wall"], max(1, floor["chunks"])
    return {
        "streams": streams,
        "tokens_per_chunk": tpc,
        "tokens_per_second": floor["tokens"] / wall,
        "chunks_per_second": chunks / wall,
        "wall": wall,
        "standin_cpu": server_cpu,
        "standin_busy": server_cpu / wall,
        "standin_us_per_chunk": server_cpu / chunks * 1e6,
        "standin_waited": waited,
        "bare_cpu": floor["cpu"],
        "bare_us_per_chunk": floor["cpu"] / chunks * 1e6,
    }


def row(label: str, r: dict[str, Any]) -> str:
    return (
        f"| {label} | {r['streams']} | {r['tokens_per_chunk']} | {r['tokens_per_second']:,.0f} | "
        f"{r['chunks_per_second']:,.0f} | {r['wall']:.2f} | {r['standin_cpu']:.2f} | {r['standin_busy']:.2f} | "
        f"{r['standin_us_per_chunk']:,.1f} | {r['bare_us_per_chunk']:,.1f} | {r['standin_waited']:.2f} |"
    )


HEAD = (
    "| stand-in | streams | tok/chunk | tok/s | chunks/s | wall s | stand-in CPU-s | stand-in CPU-s/wall | "
    "stand-in µs/chunk | bare µs/chunk | stand-in s waiting for a CPU |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="500", help="concurrent streams, comma-separated")
    parser.add_argument("--tokens-per-chunk", default="8", help="comma-separated")
    parser.add_argument("--words", type=int, default=120, help="question words, as bench_e2e.py's")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None)
    ns = parser.parse_args(argv)
    pin = ns.pin if ns.pin is not None else (os.cpu_count() or 1) >= 2
    ns.botkit_cpu, ns.others_cpu = (0, 1) if pin else (None, None)
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    trees = [(label, Path(path).resolve()) for label, _, path in (c.partition("=") for c in ns.compare)]
    trees.append(("this", REPO))
    logs = Path(tempfile.mkdtemp(prefix="bench_standin-"))
    results: list[dict[str, Any]] = []
    print(HEAD, flush=True)
    number = 0
    for tpc in (int(x) for x in ns.tokens_per_chunk.split(",")):
        for streams in (int(x) for x in ns.streams.split(",")):
            for _ in range(ns.reps):
                for label, tree in trees if number % 2 == 0 else trees[::-1]:
                    result = {"stand_in": label, **one_run(ns, tree, streams, tpc, logs)}
                    results.append(result)
                    print(row(label, result), flush=True)
                number += 1
    for label, _ in trees:
        mine = [r["tokens_per_second"] for r in results if r["stand_in"] == label]
        print(f"{label}: median {statistics.median(mine):,.0f} tok/s over {len(mine)} runs")
    cmd = "python benchmarks/bench_standin.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{cmd}\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps({"command": cmd, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
