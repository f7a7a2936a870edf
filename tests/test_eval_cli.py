"""``botkit eval`` end to end: the real command in its own process, against the vLLM stand-in,
whose answers are known (it does arithmetic exactly and boxes it; anything else gets no or a
wrong answer), so the reported numbers can be asserted exactly."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from subprocesses import clean_env

from botkit.testing import Standin

#: The stand-in gets the first three right (17*23 exactly; 1/2 + 1/4 as 0.75 and 1/2 as 0.5,
#: graded equal to \frac34 and \dfrac12), boxes 2 - 5 = -3 for the quadratic, gives no boxed
#: answer to the linear equation, and computes 10 - 2*3 = 4 for the word problem (not 8).
DATASET = "\n".join(
    json.dumps(line)
    for line in [
        {"id": "mul", "question": "What is 17*23?", "answer": "391"},
        {"id": "frac", "question": "What is 1/2 + 1/4?", "answer": "\\frac{3}{4}"},
        {"id": "half", "question": "What is 1/2?", "answer": "\\dfrac12"},
        {"id": "quadratic", "question": "Solve x^2 - 5x + 6 = 0.", "answer": "\\{2, 3\\}"},
        {"id": "linear", "question": "Solve for x: 2x + 3 = 7.", "answer": "2"},
        {"id": "word", "question": "What is 10 - 2*3, then doubled?", "answer": "8"},
    ]
)
RIGHT = {"mul", "frac", "half"}


async def _botkit(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``botkit ARGS`` in its own process (the test's stand-in keeps serving meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botkit.cli",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 110)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _eval(tmp_path: Path, base_url: str, *args: str) -> tuple[int, str, str]:
    env = clean_env(
        BOTKIT_LLM__BACKEND="external",
        BOTKIT_LLM__BASE_URL=base_url,
        BOTKIT_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    )
    return await _botkit(tmp_path, env, "eval", *args)


async def test_the_reported_accuracy_is_exactly_what_the_standin_gets_right(tmp_path: Path) -> None:
    (tmp_path / "set.jsonl").write_text(DATASET)
    async with Standin(tokens_per_second=0) as standin:
        standin.inject_failure("empty", 2)  # the first run's answer, and its retry, come back empty
        code, out, err = await _eval(
            tmp_path, standin.base_url, "math", "set.jsonl", "--runs", "3", "--concurrency", "1",
            "--json", "out.json", "--chart", "out.png",
        )  # fmt: skip
        requests = list(standin.requests)
    assert code == 0, err
    assert err.splitlines()[0].startswith("botkit eval: model backend: external server(s) at ")
    report = json.loads((tmp_path / "out.json").read_text())
    overall = report["results"][0]["overall"]
    # 18 runs; the first (mul, run 1) had no answer even after the retry: 3+3+3 - 1 = 8 right.
    assert overall["runs"] == 18
    assert overall["accuracy_mean"] == pytest.approx(8 / 18)
    assert overall["accuracy_std"] == pytest.approx(0.0962250448649376)  # runs: 2/6, 3/6, 3/6
    assert overall["empty_rate"] == pytest.approx(1 / 18)
    assert overall["compliance"] == pytest.approx(14 / 18)  # linear never boxes (3 runs), nor the empty run
    assert overall["exhausted_rate"] == 0
    per_question = {row["name"]: row for row in report["results"][0]["per_question"]}
    assert {q for q, row in per_question.items() if row["accuracy_mean"] == 1} == {"frac", "half"}
    assert per_question["mul"]["accuracy_mean"] == pytest.approx(2 / 3)
    results = report["run_results"]
    assert [r["extracted"] for r in results if r["question"] == "half"] == ["0.5"] * 3
    assert {r["extracted"] for r in results if r["question"] == "quadratic"} == {"-3"}
    first = results[0]
    assert (first["question"], first["empty"], first["empty_retried"], first["correct"]) == (
        "mul",
        True,
        True,
        False,
    )
    # One request per run plus the empty-answer retry, which pre-fills "<think>\n" like a chat turn.
    assert len(requests) == 19
    assert requests[1]["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert all(r["messages"][0]["content"].startswith("\n") for r in requests)  # the "\n" guard
    assert all(len(r["messages"]) <= 2 and r["messages"][0]["role"] == "user" for r in requests)  # no system
    assert {(r["temperature"], r["top_p"]) for r in requests} == {(0.6, 0.95)}
    assert len({r["seed"] for r in requests[1:]}) == 18  # one seed per (question, run)
    assert "overall" in out and "44% ± 10%" in out
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_compare_pairs_seeds_and_tells_a_real_difference_from_noise(tmp_path: Path) -> None:
    (tmp_path / "set.jsonl").write_text(DATASET)
    # A persona whose reasoning budget is too small to ever reach an answer.
    (tmp_path / "tiny.md").write_text(
        "---\nname: tiny\ndescription: too few tokens\nmax_tokens: 5\nanswer_format: boxed\n---\n"
        "{{ question }}\n\nPlease reason step by step, and put your final answer within \\boxed{}.\n"
    )
    async with Standin(tokens_per_second=0) as standin:
        code, out, err = await _eval(
            tmp_path, standin.base_url, "math", "set.jsonl", "--compare", "tiny.md", "--runs", "2",
            "--json", "out.json",
        )  # fmt: skip
        requests = list(standin.requests)
    assert code == 0, err
    report = json.loads((tmp_path / "out.json").read_text())
    math, tiny = report["results"]
    assert math["overall"]["accuracy_mean"] == pytest.approx(0.5)
    assert tiny["overall"]["accuracy_mean"] == 0
    assert tiny["overall"]["exhausted_rate"] == 1  # finish_reason "length" every time
    comparison = report["comparison"]
    assert comparison["difference"] == pytest.approx(0.5)
    assert comparison["distinguishable"] is True and comparison["ci_low"] > 0
    assert "is better beyond noise" in out
    # `botkit eval report --results` reads the same file: each persona version with its accuracy.
    env = clean_env(BOTKIT_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    code, shown, err = await _botkit(tmp_path, env, "eval", "report", "--results", "out.json", "--json")
    assert code == 0, err
    offline = {v["persona"]: v["offline"] for v in json.loads(shown)["versions"]}
    assert offline["math"][0]["accuracy_mean"] == pytest.approx(0.5)
    assert offline["tiny"][0]["accuracy_mean"] == 0 and offline["tiny"][0]["runs"] == 2
    # Paired: each (question, run) was asked of both personas with one seed.
    seeds = Counter(r["seed"] for r in requests)
    assert len(seeds) == 12 and set(seeds.values()) == {2}
    assert {r["max_tokens"] for r in requests if "tiny" not in r["messages"][0]["content"]} >= {5}


async def test_compare_with_a_stored_version_from_persona_history(tmp_path: Path) -> None:
    (tmp_path / "set.jsonl").write_text(DATASET)
    env = clean_env(BOTKIT_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    code, history, err = await _botkit(tmp_path, env, "personas", "history", "math")
    assert code == 0, err
    assert history.rstrip().endswith("(serving)")  # the file's version, stored by `history`
    stored = history.split()[-2]
    async with Standin(tokens_per_second=0) as standin:
        code, out, err = await _eval(
            tmp_path, standin.base_url, "math", "set.jsonl", "--compare", f"math@{stored[:8]}", "--runs", "1",
            "--json", "out.json",
        )  # fmt: skip
        missing = await _eval(tmp_path, standin.base_url, "math", "set.jsonl", "--compare", "math@ffff0000")
    assert code == 0, err
    report = json.loads((tmp_path / "out.json").read_text())
    assert [s["persona_version"] for s in report["results"]] == [stored, stored]
    assert report["comparison"]["difference"] == 0
    assert "the same result on every question, no difference measured" in out
    assert missing[0] == 2
    assert (
        f"no stored version of 'math' has a hash starting 'ffff0000' (versions: {stored[:8]})" in missing[2]
    )


def test_bad_input_exits_2_saying_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "set.jsonl").write_text(
        '{"id": "a", "question": "What is 1+1?", "answer": "2"}\n{"id": "b"}\n'
    )
    env = clean_env(BOTKIT_LLM__BACKEND="standin")
    run = [sys.executable, "-m", "botkit.cli", "eval"]
    dataset = subprocess.run(
        [*run, "math", "set.jsonl"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert dataset.returncode == 2
    assert "set.jsonl:2: question: Field required" in dataset.stderr
    (tmp_path / "good.jsonl").write_text('{"id": "a", "question": "What is 1+1?", "answer": "2"}\n')
    persona = subprocess.run(
        [*run, "maths", "good.jsonl"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert persona.returncode == 2
    assert "no persona named 'maths' (personas: general, legal, math, medical;" in persona.stderr
    runs = subprocess.run(
        [*run, "math", "good.jsonl", "--runs", "0"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert runs.returncode == 2 and "--runs: 0 is too small: give 1 or more" in runs.stderr
    assert "Traceback" not in dataset.stderr + persona.stderr + runs.stderr


def test_ctrl_c_prints_what_was_measured_so_far(tmp_path: Path) -> None:
    lines = [{"id": f"q{i}", "question": f"What is {i}*7?", "answer": str(i * 7)} for i in range(2, 8)]
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    process = subprocess.Popen(
        [sys.executable, "-m", "botkit.cli", "eval", "math", "set.jsonl", "--runs", "2", "--concurrency", "1",
         "--json", "out.json"],
        cwd=tmp_path,
        env=clean_env(BOTKIT_LLM__BACKEND="standin", BOTKIT_LLM__STANDIN_TOKENS_PER_SECOND="40"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for line in process.stderr:  # one line per finished run when stderr is not a terminal
        if line.startswith("[1/12]"):
            break
        assert time.monotonic() < deadline, "no run finished"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Interrupted: what was measured so far." in out
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["partial"] is True
    assert 1 <= len(report["run_results"]) < 12
    assert all(r["correct"] for r in report["run_results"])
    assert report["results"][0]["overall"]["runs"] == len(report["run_results"])
    assert "overall" in out
