"""The garbage collector set for a long-running server, once start-up is done.

Why: a serving botkit holds tens of thousands of long-lived objects (modules, settings, personas,
SQLAlchemy's compiled statements, the SDKs' clients) and allocates many short-lived ones per SSE
chunk. With CPython's defaults (a young collection every 700 net allocations, a full one every
100 young ones) the collector keeps re-scanning the long-lived heap: at 100 streams it cost 8-12 %
of botkit's CPU per chunk (benchmarks/bench_e2e.py, docs/benchmarks.md section 4). Moving what
start-up built into the permanent generation (:func:`gc.freeze`) takes it out of every scan, and a
larger first threshold makes young collections rarer; cycles are still collected.
"""

from __future__ import annotations

import gc

#: Net allocations between young collections (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


def tune_for_serving() -> None:
    """Freeze what start-up allocated and space out young collections (idempotent)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
