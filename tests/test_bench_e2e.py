"""The end-to-end benchmark's verdict on a reply (benchmarks/bench_e2e.py), which `.ci/run`'s
smoke run fails on: it must accept exactly the stand-in's answer to that reply's question."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from botkit.llm.standin import make_reply

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_e2e.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_e2e", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_e2e"] = module
    spec.loader.exec_module(module)
    return module


def test_the_answer_to_the_question_asked_passes_and_anything_else_fails() -> None:
    bench = _bench()
    rendered = f"You are a helpful assistant.\n\nQuestion:\n{bench.question(3, 40)}"
    answer = make_reply(rendered).answer
    assert bench.answer_problem(3, answer, 40) is None
    assert "another question" in bench.answer_problem(4, answer, 40)  # a reply in the wrong thread
    truncated = answer[:-10]
    assert bench.answer_problem(3, truncated, 40) is not None  # the last chunks never shown
    assert bench.answer_problem(3, answer.replace("w5 ", "w5 w5 ", 1), 40) is not None  # a chunk twice
    assert "not the answer sent" in bench.answer_problem(3, answer + " stand-in.", 40)
    assert bench.answer_problem(3, "⚠️ Something went wrong inside botkit (TimeoutError).", 40) is not None
