"""``botkit eval PERSONA DATASET``: the command around the runner.

It starts the model backend exactly as ``botkit chat`` does (:func:`botkit.llm.backends.
start_backends`: the stand-in, a supervised vLLM, or ``llm.base_url``), announces which on the
first line, shows a progress bar on stderr (a line per finished run when stderr is not a
terminal), and prints the table on stdout; ``--json`` and ``--chart`` write the same results.
Ctrl-C (or SIGTERM) stops the runs in flight and reports what was measured so far, marked
partial (exit 130). Exit codes as everywhere in botkit: 2 for a bad argument, dataset or
persona (the message says what to fix), 3 when the model server cannot be started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from botkit.config import Settings
    from botkit.eval.runner import RunResult, Subject

EXIT_BAD_INPUT = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130
JSON_FORMAT = 1  # the "format" of the JSON written by --json (docs/eval.md)
CHART_MAX_BARS = 30


def add_parser(sub: Any) -> None:
    """``eval`` in ``botkit``'s subcommands (``eval report`` is dispatched before parsing)."""
    parser = sub.add_parser(
        "eval",
        help="evaluate a persona on a dataset: N runs per question, accuracy ± std, format, latency; "
        "`botkit eval report [--persona P] [--since 30d] [--results FILE...]` shows users' votes per "
        "persona version beside these results",
    )
    parser.add_argument("persona", help="persona name, persona file (.md), or NAME@HASH (a stored version)")
    parser.add_argument("dataset", help="JSONL dataset (see docs/eval.md), e.g. datasets/math.jsonl")
    parser.add_argument(
        "--runs", type=_positive, default=5, help="runs per question (default 5; 3-5 advised)"
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=4, help="questions asked at once (default 4)"
    )
    parser.add_argument("--limit", type=_positive, help="only the first N questions of the dataset")
    parser.add_argument("--seed", type=int, default=0, help="base of the per-run sampling seeds (default 0)")
    parser.add_argument(
        "--compare", metavar="OTHER", help="also evaluate OTHER (name, file or NAME@HASH) on the same seeds"
    )
    parser.add_argument("--json", metavar="OUT", help="write every result as JSON to OUT")
    parser.add_argument("--chart", metavar="OUT.png", help="write a PNG chart to OUT.png")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: give 1 or more")
    return value


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run the eval inside botkit's signal handling (Ctrl-C cancels it: partial results)."""
    from botkit.cli import _run

    return _run(evaluate(settings, args))


def report_namespace(argv: list[str]) -> argparse.Namespace:
    """The arguments of ``botkit eval report ...`` (:mod:`botkit.eval.report`'s own parser):
    ``eval`` itself takes ``PERSONA DATASET``, so ``report`` is told apart before parsing."""
    from botkit.eval.report import add_report_parser

    parser = argparse.ArgumentParser(prog="botkit eval")
    add_report_parser(parser.add_subparsers(dest="eval_command", required=True))
    return parser.parse_args(["report", *argv])


async def evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console

    from botkit.eval.dataset import DatasetError, load_dataset
    from botkit.eval.subjects import SubjectError

    err = Console(stderr=True)
    try:
        questions = load_dataset(Path(args.dataset), limit=args.limit)
        subjects = await _subjects(settings, [args.persona, *([args.compare] if args.compare else [])])
    except (DatasetError, SubjectError) as problem:
        print(f"botkit: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return await _measure(settings, args, questions, subjects, err)


async def _subjects(settings: Settings, specs: Sequence[str]) -> list[Subject]:
    from botkit.cli import _open_store
    from botkit.eval.subjects import resolve
    from botkit.personas import PersonaRegistry, shipped_personas_dir
    from botkit.plugins.loader import load_plugins

    variables = [v for plugin in load_plugins(settings) for v in plugin.variables]
    registry = PersonaRegistry(
        settings.personas.dir or shipped_personas_dir(),
        extra_variables=variables,
        max_file_bytes=settings.personas.max_file_bytes,
    )
    registry.load()
    subjects = [await resolve(spec, registry, variables, lambda: _open_store(settings)) for spec in specs]
    if len(subjects) == 2 and subjects[0].label == subjects[1].label:
        subjects[1] = type(subjects[1])(subjects[1].label + " (compare)", subjects[1].persona)
    return subjects


async def _measure(
    settings: Settings, args: argparse.Namespace, questions: Sequence[Any], subjects: list[Subject], err: Any
) -> int:
    from botkit.eval.runner import EvalRunner, jobs
    from botkit.llm.backends import start_backends
    from botkit.llm.supervisor import BackendStartError

    work = jobs(subjects, questions, args.runs, args.seed)
    if any(q.answer is not None for q in questions):
        from botkit.eval.grading import warm_up

        warm_up()
    failure: str | None = None
    partial = True
    progress, task = _progress(err, len(work))
    runner: EvalRunner | None = None
    try:
        async with AsyncExitStack() as stack:
            pool, description = await start_backends(settings.llm, stack)
            err.print(f"botkit eval: model backend: {description}", highlight=False, soft_wrap=True)
            runner = EvalRunner(
                pool,
                settings.llm,
                concurrency=args.concurrency,
                on_result=lambda r: _advance(err, progress, task, r, len(work)),
                on_status=lambda s: progress.update(task, status=s or ""),
            )
            with progress:
                failure = await _run_unless_backend_fails(runner, pool, work)
            partial = failure is not None
    except asyncio.CancelledError:
        pass  # Ctrl-C / SIGTERM: report what was measured
    except BackendStartError as start_error:
        failure = str(start_error)
    results = runner.results if runner is not None else []
    if failure is not None:
        print(f"botkit: error: the model server could not be started: {failure}", file=sys.stderr)
    if results or not partial:
        _report(args, questions, subjects, results, partial=partial, backend=settings.llm.model)
    if failure is not None:
        return EXIT_BACKEND
    return EXIT_INTERRUPTED if partial else 0


async def _run_unless_backend_fails(runner: Any, pool: Any, work: Sequence[Any]) -> str | None:
    """Run the eval; if the supervised model server fails for good first, stop and say why."""
    if pool.failed:
        return str(pool.failure())
    running = asyncio.create_task(runner.run(work), name="botkit-eval")
    failing = asyncio.create_task(pool.wait_failed(), name="botkit-eval-backend")
    try:
        await asyncio.wait([running, failing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (running, failing):
            t.cancel()
        await asyncio.wait([running, failing])
    if running.done() and not running.cancelled():
        running.result()  # raises what the runner raised
        return None
    return str(failing.result())


def _progress(err: Any, total: int) -> tuple[Progress, TaskID]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]eval[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[accuracy]} {task.fields[status]}"),
        console=err,
        transient=False,
    )
    task = progress.add_task("eval", total=total, accuracy="", status="")
    return progress, task


def _advance(err: Any, progress: Progress, task: TaskID, result: RunResult, total: int) -> None:
    state = progress.tasks[0]
    done = int(state.completed) + 1
    correct = int(state.fields.get("correct", 0)) + result.correct
    progress.update(task, advance=1, correct=correct, accuracy=f"{correct}/{done} correct", status="")
    if not err.is_terminal:  # no live bar: one line per run, so a log shows progress too
        verdict = (
            "correct" if result.correct else "wrong" + (f" ({result.failed[0]})" if result.failed else "")
        )
        print(
            f"[{done}/{total}] {result.subject} {result.question} run {result.run + 1}: {verdict}",
            file=sys.stderr,
            flush=True,
        )


def _json_document(
    args: argparse.Namespace,
    questions: Sequence[Any],
    subjects: Sequence[Subject],
    series: Sequence[Any],
    by_tag: Sequence[Any],
    comparison: Any,
    results: Sequence[RunResult],
    partial: bool,
    backend: str,
) -> dict[str, Any]:
    """``--json``'s document (docs/eval.md): settings, one result per persona, every run."""
    return {
        "format": JSON_FORMAT,
        "partial": partial,
        "dataset": args.dataset,
        "questions": len(questions),
        "runs": args.runs,
        "seed": args.seed,
        "model": backend,
        # One entry per persona, in the keys `botkit eval report --results` reads
        # (botkit.eval.offline): persona, persona_version, dataset, runs, accuracy_mean/std.
        "results": [
            {
                "persona": s.persona.name,
                "persona_version": s.persona.content_hash,
                "label": s.label,
                "dataset": args.dataset,
                "runs": args.runs,
                "accuracy_mean": overall.accuracy_mean,
                "accuracy_std": overall.accuracy_std,
                "overall": overall.as_json(),
                "per_question": [row.as_json() for row in rows],
                "per_tag": [row.as_json() for row in tag_rows],
            }
            for s, (_, rows, overall), tag_rows in zip(subjects, series, by_tag, strict=True)
        ],
        "comparison": comparison.as_json() if comparison is not None else None,
        "run_results": [r.as_json() for r in results],
    }


def _report(
    args: argparse.Namespace,
    questions: Sequence[Any],
    subjects: Sequence[Subject],
    results: Sequence[RunResult],
    *,
    partial: bool,
    backend: str,
) -> None:
    from rich.console import Console

    from botkit.eval.report_table import print_report
    from botkit.eval.stats import compare, per_question, per_tag, summarize

    order = [q.id for q in questions]
    tags = {q.id: list(q.tags) for q in questions}
    series, by_tag = [], []
    for subject in subjects:
        mine = [r for r in results if r.subject == subject.label]
        series.append((subject.label, per_question(mine, order), summarize(mine)))
        by_tag.append(per_tag(mine, tags))
    comparison = (
        compare(results, subjects[0].label, subjects[1].label, seed=args.seed) if len(subjects) > 1 else None
    )
    # A table piped to a file keeps its columns rather than wrapping them to 80 characters.
    console = Console(width=None if sys.stdout.isatty() else 140)
    print_report(console, series, comparison, partial=partial, by_tag=by_tag)
    if args.json:
        document = _json_document(
            args, questions, subjects, series, by_tag, comparison, results, partial, backend
        )
        Path(args.json).write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if args.chart and any(rows for _, rows, _ in series):
        from botkit.eval.chart import write_chart

        title = f"{Path(args.dataset).name}: {len(order)} questions × {args.runs} runs" + (
            " (partial)" if partial else ""
        )
        # More questions than bars fit side by side: one bar per tag instead (where there are tags).
        if len(order) > CHART_MAX_BARS and all(by_tag):
            series = [
                (label, rows, overall) for (label, _, overall), rows in zip(series, by_tag, strict=True)
            ]
        write_chart(Path(args.chart), series, title)
