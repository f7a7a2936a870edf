"""``botkit eval report`` on SQLite and PostgreSQL: votes per persona version, counted from what a
real botkit stored, beside offline results read from ``botkit eval --json`` files."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from test_store import db_url, pg_database  # noqa: F401  (the SQLite / PostgreSQL fixtures)

from botkit.cli import main
from botkit.events import FeedbackEvent
from botkit.store import upgrade
from botkit.store.models import Message
from botkit.testing.recording import RecordingReply
from botkit.testing.testbot import TestBot

GENERAL = "---\nname: general\ndescription: General\n---\n{{ question }}\n"
V1 = "---\nname: pirate\ndescription: Pirate\n---\nAnswer like a pirate.\n\n{{ question }}\n"
V2 = "---\nname: pirate\ndescription: Pirate\n---\nAnswer like a polite pirate.\n\n{{ question }}\n"


async def _answer_and_vote(bot: TestBot, tag: str, votes: list[list[tuple[str, str]]]) -> list[int]:
    """One answered question per entry of ``votes``, then its clicks (user, vote) in order
    (``tag`` keeps the deliveries of two botkit sessions apart)."""
    turns = []
    for index, clicks in enumerate(votes):
        reply = await bot.ask(
            f"Question {index}?",
            reply=RecordingReply(feedback_buttons=True),
            thread=f"{tag}{index}",
            delivery_id=f"{tag}-{index}",
        )
        (turn_id,) = reply.buttons.values()
        turns.append(turn_id)
        for number, (user, vote) in enumerate(clicks):
            event = FeedbackEvent(
                platform="test",
                workspace="workspace-1",
                channel="channel-1",
                user=user,
                turn_id=turn_id,
                vote=vote,  # type: ignore[arg-type]
                delivery_id=f"{turn_id}-{number}",
            )
            assert (await bot.bot.vote(event)).outcome in ("recorded", "changed")
    return turns


def test_report_counts_votes_per_version_beside_offline_results(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "general.md").write_text(GENERAL)
    (folder / "pirate.md").write_text(V1)
    settings = {"personas": {"dir": str(folder), "default": "pirate"}}
    hashes: list[str] = []

    async def scenario() -> None:
        await upgrade(db_url)  # PostgreSQL is never migrated implicitly
        async with TestBot(tmp_path, database_url=db_url, settings=settings) as bot:
            hashes.append(bot.bot.personas.get("pirate").content_hash)  # type: ignore[union-attr]
            v1 = await _answer_and_vote(
                bot,
                "a",
                [
                    [("ann", "up"), ("bob", "up")],
                    [("ann", "down")],
                    [("ann", "up"), ("ann", "down")],  # changed: one vote, a 👎
                    [],
                    [("cid", "up")],  # an old turn: outside --since 30d below
                ],
            )
        (folder / "pirate.md").write_text(V2)
        async with TestBot(tmp_path, database_url=db_url, settings=settings) as bot:  # a restart
            hashes.append(bot.bot.personas.get("pirate").content_hash)  # type: ignore[union-attr]
            await _answer_and_vote(bot, "b", [[("ann", "up")], []])
        engine = create_async_engine(db_url)
        try:
            async with engine.begin() as connection:
                old = datetime.now(UTC) - timedelta(days=40)
                await connection.execute(update(Message).where(Message.id == v1[-1]).values(created_at=old))
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    v1_hash, v2_hash = hashes
    assert v1_hash != v2_hash
    results = tmp_path / "eval.json"
    offline = [
        {
            "persona": "pirate",
            "persona_version": v1_hash[:12],
            "dataset": "pirate.jsonl",
            "runs": 5,
            "accuracy": {"mean": 0.8, "std": 0.05},
        },
        {
            "persona_name": "pirate",
            "persona_hash": "f" * 64,
            "overall": {"accuracy_mean": 0.6, "accuracy_std": 0.1},
        },
    ]
    results.write_text(json.dumps({"results": offline}))
    monkeypatch.setenv("BOTKIT_DATABASE__URL", db_url)
    monkeypatch.setenv("BOTKIT_DATABASE__AUTO_MIGRATE", "false")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()

    assert main(["eval", "report", "--json", "--since", "30d", "--results", str(results)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["persona"], r["version"]): r for r in report["versions"]}
    assert set(rows) == {("pirate", v1_hash), ("pirate", v2_hash), ("pirate", "f" * 64)}
    first, second, evaluated_only = (
        rows[("pirate", v1_hash)],
        rows[("pirate", v2_hash)],
        rows[("pirate", "f" * 64)],
    )
    assert (first["replies"], first["votes"], first["up"], first["down"]) == (4, 4, 2, 2)
    assert (first["vote_rate"], first["up_share"]) == (1.0, 0.5)
    assert first["offline"] == [
        {
            "dataset": "pirate.jsonl",
            "runs": 5,
            "accuracy_mean": 0.8,
            "accuracy_std": 0.05,
            "source": str(results),
        }
    ]
    assert (second["replies"], second["votes"], second["up"], second["vote_rate"], second["up_share"]) == (
        2,
        1,
        1,
        0.5,
        1.0,
    )
    assert second["offline"] == []
    assert (
        evaluated_only["replies"],
        evaluated_only["vote_rate"],
        evaluated_only["offline"][0]["accuracy_mean"],
    ) == (0, None, 0.6)

    assert main(["eval", "report", "--since", "60d", "--persona", "pirate", "--results", str(results)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "Feedback on the turns of the last 60d:"
    assert table[1].split() == [
        "persona",
        "version",
        "replies",
        "votes",
        "vote",
        "rate",
        "👍",
        "share",
        "offline",
        "eval",
    ]
    assert table[2].split() == [
        "pirate",
        v1_hash[:12],
        "5",
        "5",
        "100%",
        "60%",
        "accuracy",
        "80.0%",
        "±",
        "5.0%,",
        "5",
        "runs",
        "on",
        "pirate.jsonl",
    ]
    assert table[3].split() == ["pirate", v2_hash[:12], "2", "1", "50%", "100%", "–"]
    assert table[4].split() == [
        "pirate",
        ("f" * 64)[:12],
        "0",
        "0",
        "–",
        "–",
        "accuracy",
        "60.0%",
        "±",
        "10.0%",
    ]

    assert main(["eval", "report", "--json", "--persona", "general"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == []


def test_report_says_what_is_wrong_with_its_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOTKIT_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'botkit.db'}")
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"persona": "math", "accuracy_mean": 0.5}')
    assert main(["eval", "report", "--since", "soon"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["eval", "report", "--results", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"--results {broken}: no persona version (key 'persona_version' or 'persona_hash'" in err
    assert main(["eval", "report", "--results", str(tmp_path / "missing.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err
