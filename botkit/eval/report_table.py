"""The terminal table of an eval: one row per question, then the overall row, per persona."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from botkit.eval.stats import Comparison, Summary


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_table(title: str, rows: Sequence[Summary], overall: Summary, first: str = "question") -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (
        (first, "left"),
        ("runs", "right"),
        ("accuracy", "right"),
        ("format", "right"),
        ("empty", "right"),
        ("length", "right"),
        ("errors", "right"),
        ("TTFT p50/p95 s", "right"),
        ("total p50/p95 s", "right"),
        ("tok/s", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in [*rows, overall]:
        table.add_row(
            "[bold]overall[/bold]" if row.scope == "overall" else row.name,
            str(row.runs),
            f"{_pct(row.accuracy_mean)} ± {_pct(row.accuracy_std)}",
            _pct(row.compliance),
            _pct(row.empty_rate),
            _pct(row.exhausted_rate),
            str(row.errors),
            f"{_secs(row.ttft_p50)} / {_secs(row.ttft_p95)}",
            f"{_secs(row.total_p50)} / {_secs(row.total_p95)}",
            "-" if row.tokens_per_second is None else f"{row.tokens_per_second:.0f}",
            end_section=len(rows) > 0 and row is rows[-1],
        )
    return table


def print_report(
    console: Console,
    tables: Sequence[tuple[str, Sequence[Summary], Summary]],
    comparison: Comparison | None,
    *,
    partial: bool,
    by_tag: Sequence[Sequence[Summary]] = (),
) -> None:
    """Every persona's table (and its per-tag table, where the dataset has tags), then the
    comparison's verdict; a partial eval says so first."""
    if partial:
        console.print("[bold yellow]Interrupted: what was measured so far.[/bold yellow]")
    for index, (title, rows, overall) in enumerate(tables):
        console.print(summary_table(title, rows, overall))
        if index < len(by_tag) and by_tag[index]:
            console.print(summary_table(f"{title} by tag", by_tag[index], overall, first="tag"))
    console.print(
        "accuracy: mean ± std across runs (overall: std of each run's accuracy over all questions); "
        "format: boxed answer / notice as the persona promises; length: reasoning used all of max_tokens"
    )
    if comparison is not None:
        console.print(comparison.verdict())
