"""``botkit eval report``: what users thought of each persona version, beside its offline results.

Per persona and persona version (the content hash every turn stores), over the turns of the
last ``--since`` (default 30 days):

- **replies**: complete model answers (the final replies that carry the 👍/👎 buttons);
- **votes**: votes cast on those replies (one per user and reply: a changed vote counts once);
- **vote rate**: votes / replies; **👍 share**: 👍 / votes;
- **offline**: the ``botkit eval`` results for the same persona version, from the JSON files
  given with ``--results`` (their keys: :mod:`botkit.eval.offline`): accuracy mean ± std, runs,
  dataset. A version that was only evaluated offline is listed too, with no replies.

``--json`` prints one JSON object instead of the table. ``report`` is the first word of
``botkit eval report``; ``botkit eval PERSONA DATASET`` (the offline runner) shares the
``eval`` command, so :func:`add_report_parser` builds only the ``report`` part and
:func:`run_report` runs it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit.config import ConfigError
from botkit.store.feedback import VersionFeedback

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.eval.offline import OfflineResult

HASH_SHOWN = 12  # characters of a version hash in the table


@dataclass
class VersionRow:
    """One line of the report: a persona version's votes (as the store counts them) and its
    offline results."""

    feedback: VersionFeedback
    offline: list[OfflineResult] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        f = self.feedback
        return {
            "persona": f.persona,
            "version": f.version,
            "replies": f.replies,
            "votes": f.votes,
            "up": f.up,
            "down": f.down,
            "vote_rate": f.vote_rate,
            "up_share": f.up_share,
            "offline": [r.as_json() for r in self.offline],
        }


def add_report_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``report`` to the ``botkit eval`` subcommands (``subparsers`` from ``add_subparsers``)."""
    report = subparsers.add_parser(
        "report", help="votes (👍/👎) per persona version, beside offline eval results"
    )
    report.add_argument("--persona", help="only this persona")
    report.add_argument(
        "--since", default="30d", help="turns of the last 30m, 12h, 7d, 2w ... (default: 30d)"
    )
    report.add_argument(
        "--results",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="`botkit eval --json` result files to show beside the votes",
    )
    report.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return report


def build_rows(
    feedback: list[VersionFeedback], offline: list[OfflineResult], persona: str | None
) -> list[VersionRow]:
    """The votes per version, each with its matching offline results; offline-only versions after."""
    rows = [VersionRow(f) for f in feedback]
    for result in offline:
        if persona is not None and result.persona != persona:
            continue
        row = next((r for r in rows if result.matches(r.feedback.persona, r.feedback.version)), None)
        if row is None:  # evaluated offline only: no replies, no votes
            row = VersionRow(VersionFeedback(result.persona, result.version, replies=0, votes=0, up=0))
            rows.append(row)
        row.offline.append(result)
    rows.sort(key=lambda r: r.feedback.persona)  # stable: each persona's versions keep their order
    return rows


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _offline_text(results: list[OfflineResult]) -> str:
    parts = []
    for r in results:
        spread = f" ± {r.accuracy_std:.1%}" if r.accuracy_std is not None else ""
        runs = f", {r.runs} runs" if r.runs is not None else ""
        dataset = f" on {r.dataset}" if r.dataset else ""
        parts.append(f"accuracy {r.accuracy_mean:.1%}{spread}{runs}{dataset}")
    return "; ".join(parts) or "–"


def render_table(rows: list[VersionRow], since: str) -> str:
    """The terminal table: one line per persona version."""
    if not rows:
        return f"No complete answers in the last {since}, and no offline results given."
    header = ("persona", "version", "replies", "votes", "vote rate", "👍 share", "offline eval")
    lines = [
        (
            r.feedback.persona,
            r.feedback.version[:HASH_SHOWN],
            str(r.feedback.replies),
            str(r.feedback.votes),
            _percent(r.feedback.vote_rate),
            _percent(r.feedback.up_share),
            _offline_text(r.offline),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells: tuple[str, ...]) -> str:
        left = {0, 1, 6}
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(
        [f"Feedback on the turns of the last {since}:", fmt(header), *(fmt(line) for line in lines)]
    )


async def run_report(settings: Settings, args: argparse.Namespace) -> int:
    """``botkit eval report``: read the votes and the result files, print them. Bad arguments,
    an unreadable results file or database raise :class:`ConfigError` (exit 2, with why)."""
    from botkit.audit import parse_duration
    from botkit.dbconfig import open_configured_store
    from botkit.eval.offline import ResultsError, load_results
    from botkit.store import StoreError

    try:
        window: timedelta = parse_duration(args.since)
    except ValueError as err:
        raise ConfigError(f"--since: {err}") from None
    try:
        offline = load_results(args.results)
    except ResultsError as err:
        raise ConfigError(str(err)) from None
    try:
        store = await open_configured_store(settings.database)
    except StoreError as err:
        raise ConfigError(str(err)) from err
    try:
        feedback = await store.version_feedback(since=window, persona=args.persona)
    finally:
        await store.close()
    rows = build_rows(feedback, offline, args.persona)
    if args.json:
        print(
            json.dumps(
                {"since": args.since, "persona": args.persona, "versions": [r.as_json() for r in rows]},
                ensure_ascii=False,
            )
        )
    else:
        print(render_table(rows, args.since))
    return 0
