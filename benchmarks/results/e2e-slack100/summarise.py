"""The table of docs/benchmarks.md section 2, "chat.startStream for first messages when posts are
contended": medians (min-max) over the runs of ``ab-<tok/s>tps-run<N>.json`` in this folder
(bench_e2e.py --json). ``calls-per-run.txt`` is each run's call log (calls-*.json) by method."""

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

rows = defaultdict(list)
for path in sorted(Path(__file__).parent.glob("ab-*tps-run*.json")):
    rate = int(re.search(r"ab-(\d+)tps", path.name).group(1))
    for result in json.loads(path.read_text())["results"]:
        rows[(rate, result["streams"], result["botkit"])].append(result)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


print(
    "| tok/s per reply | questions | botkit | runs | ok | placeholder or status p95 s | first text p50 / p95 s"
    " (from the mention) | final p95 s (from the mention) | final after the last token p50 s |"
    " **final after the last token p95 s** | p99 s | 429s | calls/reply |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows, key=lambda k: (-k[0], k[1], k[2] != "base")):
    runs = rows[key]

    def lat(name: str, index: int) -> list[float]:
        return [r["latency"][name][index] for r in runs]  # noqa: B023 - used at once

    first = lat("first_text", 0), lat("first_text", 1)
    print(
        f"| {key[0]} | {key[1]} | {'base' if key[2] == 'base' else 'auto'} | {len(runs)} |"
        f" {'/'.join(str(r['replies_ok']) for r in runs)} | {spread(lat('placeholder', 1))} |"
        f" {statistics.median(first[0]):.2f} / {statistics.median(first[1]):.2f} | {spread(lat('final', 1))} |"
        f" {spread(lat('after_last_token', 0))} | **{spread(lat('after_last_token', 1))}** |"
        f" {spread(lat('after_last_token', 2))} | {sum(r['rate_limited'] for r in runs)} |"
        f" {statistics.median([r['api_calls_per_reply'] for r in runs]):.1f} |"
    )
