"""Discord delivery under Discord's real limits: botkit and llmcord side by side in one run.

N users @mention the bot at once in one channel of a fake Discord that enforces Discord's limits
(:class:`~botkit.testing.discord_limits.DiscordLimits`: 5 calls per 5 s per route and channel for
message create, edit, delete and typing; 50/s in all; the real headers and 429s). The bot is, in
turn, on fresh servers each:

* ``botkit run`` with the Discord adapter (``mention_mode`` inline: the answer is a reply in the
  channel, as llmcord answers), a fresh SQLite database, its default budgets;
* llmcord (https://github.com/jakobdylanc/llmcord), vendored unchanged under
  ``benchmarks/third_party/llmcord/`` and run by its ``run_llmcord.py`` against the same fake.

Both read the same vLLM stand-in (reasoning in its own field, ``--tokens-per-second`` per
stream), which runs in the fake Discord's process (this file's ``platform`` role) and notes when
it sent each answer's last token; the fake keeps every version of every message. Reported per
bot: **final text after the last token** p50/p95/p99 (from the stand-in's last token to the first
version of the reply that shows the whole answer), first visible message and final text p50/p95
from the mention (a bot that starts its model late looks good on the first figure only), 429s (route and global), REST calls per reply, the bot's CPU seconds per 1,000 tokens
(``/proc/PID/stat`` from the mentions to the last final), and replies whose final text is not
the stand-in's answer. Output: a table, and ``--json``.

With ``--slash`` the users run ``/ask question:...`` instead, all in the one channel (botkit
only: llmcord has no slash commands): each reply is the interaction's deferred response, edited
through ``PATCH /webhooks/{app}/{token}/messages/@original``, which the fake limits per
interaction token as Discord does. Reported as well: partial edits per reply (versions of the
reply that show neither its first text nor the whole answer), p50 and the fewest.

A bot is ``[label=]name[@tree]``: ``before=botkit@/tmp/main`` runs the botkit of another
checkout (``git archive main | tar -x -C /tmp/main``) against the same fake and stand-in (this
checkout's), so before and after are measured in one run.

Run from the repository root::

    python benchmarks/bench_discord.py --mentions 100 --stall 90
    python benchmarks/bench_discord.py --smoke          # 5 mentions, a few seconds
    python benchmarks/bench_discord.py --slash --mentions 20 --bots before=botkit@/tmp/main,botkit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import Child, _write_json, pct, proc_cpu, question

REPO = Path(__file__).resolve().parent.parent
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
LLMCORD = REPO / "benchmarks" / "third_party" / "llmcord" / "run_llmcord.py"
_INDEX = re.compile(r"Q(\d+) please summarise")
_MESSAGE_ROUTES = re.compile(r"^/channels/\d+/(messages|typing)|^/webhooks/\d+/[^/]+")


# -- role: the fake Discord and the stand-in (own process) ---------------------------------------


def _timed_standin(ns: argparse.Namespace) -> Any:
    """The stand-in, noting per question when its last token went out and what it answered."""
    from botkit.llm.standin import Standin, _text_of, make_reply

    class TimedStandin(Standin):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.last_token: dict[int, float] = {}
            self.answers: dict[int, str] = {}

        async def _stream(self, request: Any, job: Any) -> Any:
            response = await super()._stream(request, job)
            asked: dict[str, Any] = next(
                (m for m in reversed(job.body["messages"]) if m.get("role") == "user"), {}
            )
            text = _text_of(asked.get("content"))
            found = _INDEX.search(text)
            if found is not None:
                index = int(found.group(1))
                self.last_token[index] = time.monotonic()
                self.answers[index] = make_reply(text).answer.strip()
            return response

    return TimedStandin(
        model_name=MODEL,
        tokens_per_second=ns.tokens_per_second,
        tokens_per_chunk=ns.tokens_per_chunk,
        max_num_seqs=1024,
    )


class _Platform:
    """The platform process's state (the fake Discord, the stand-in, what was asked) and one
    method per command the orchestrator sends on stdin."""

    COMMANDS = frozenset({"connected", "go", "slash", "wait", "dump"})

    def __init__(self, fake: Any, standin: Any, users: int) -> None:
        self.fake, self.standin = fake, standin
        self.users = [fake.add_user(f"user{i}") for i in range(users)]
        self.pushed: dict[int, dict[str, Any]] = {}  # mention's message id (or interaction id) -> index, when
        self.commanded: dict[int, Any] = {}  # index -> its interaction (--slash)

    def replies(self) -> dict[int, dict[str, Any]]:
        """Per question: the bot's message that replies to it (the first, if several)."""
        fake, me = self.fake, self.fake.bot_user["id"]
        by_reference: dict[int, dict[str, Any]] = {}
        for index, interaction in self.commanded.items():  # a slash command's reply: its original response
            if interaction.original_id in fake.messages:
                by_reference[index] = fake.messages[interaction.original_id]
        for message in fake.messages_in(fake.channel_id):
            reference = (message.get("message_reference") or {}).get("message_id")
            if message["author"]["id"] == me and reference is not None:
                index = self.pushed.get(int(reference), {}).get("index")
                if index is not None and index not in by_reference:
                    by_reference[index] = message
        return by_reference

    def finished(self) -> int:
        """How many replies show their whole answer in some version."""
        answers = self.standin.answers
        return sum(
            1
            for index, message in self.replies().items()
            if index in answers
            and answers[index] in [t.strip() for t in self.fake.versions_of(int(message["id"]))]
        )

    def synced(self) -> bool:
        """botkit has synced its ``/ask`` to the guild (commands are not run before)."""
        return any(c["name"] == "ask" for c in self.fake.commands.get(str(self.fake.guild_id), []))

    async def connected(self) -> None:
        await self.fake.wait_until_connected(timeout=120)

    async def go(self, count: str, words: str) -> None:
        """``count`` users @mention the bot in the one channel."""
        for index in range(int(count)):
            text = f"{self.fake.mention} {question(index, int(words))}"
            message = await self.fake.user_message(self.users[index], self.fake.channel_id, text)
            self.pushed[int(message["id"])] = {"index": index, "at": time.monotonic()}

    async def slash(self, count: str, words: str) -> None:
        """``count`` users run ``/ask`` there, once botkit has synced it."""
        await self.fake.wait_for(self.synced, 60)
        for index in range(int(count)):
            asked = {"question": question(index, int(words))}
            interaction = await self.fake.slash_command(self.users[index], "ask", asked)
            self.commanded[index] = interaction
            self.pushed[interaction.id] = {"index": index, "at": time.monotonic()}

    async def wait(self, count: str, stall: str) -> None:
        """Until ``count`` replies show their whole answer, or nothing changed for ``stall`` s."""
        done, changed = -1, time.monotonic()
        while time.monotonic() - changed < float(stall):
            now_done = self.finished()
            if now_done >= int(count):
                break
            if now_done != done:
                done, changed = now_done, time.monotonic()
            await asyncio.sleep(0.1)

    async def dump(self, path: str) -> None:
        """Every reply's versions beside its last token and answer, and the call counts."""
        fake, standin, shown = self.fake, self.standin, self.replies()
        records = []
        for info in self.pushed.values():
            found = shown.get(info["index"])
            records.append(
                {
                    **info,
                    "last_token": standin.last_token.get(info["index"]),
                    "answer": standin.answers.get(info["index"]),
                    "versions": fake.versions.get(int(found["id"]), []) if found else [],
                }
            )
        _write_json(
            path,
            {
                "replies": records,
                "rate_limited": sum(1 for c in fake.calls if c.status == 429),
                "global_429": sum(1 for r in (fake.limiter.rejected if fake.limiter else []) if r[2]),
                "message_calls": sum(1 for c in fake.calls if _MESSAGE_ROUTES.match(c.path)),
                "calls": len(fake.calls),
                "tokens": standin.generation_tokens_total,
            },
        )


async def platform_role(ns: argparse.Namespace) -> None:
    """Serve a fake Discord with the limits on and a stand-in; commands on stdin, one per line:
    ``connected``, ``go N WORDS`` (N mentions in one channel), ``slash N WORDS`` (N ``/ask``
    commands there), ``wait N STALL`` (until N replies show their whole answer, or nothing
    changed for STALL s), ``dump PATH``."""
    from botkit.testing.discord_limits import DiscordLimits
    from botkit.testing.fake_discord import FakeDiscord

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    standin = _timed_standin(ns)
    async with FakeDiscord(limits=DiscordLimits(typing=ns.typing_limited)) as fake, standin:
        print(
            f"READY {fake.api_url} {fake.gateway_url} {fake.token} {standin.base_url} "
            f"{fake.guild_id} {fake.channel_id}",
            flush=True,
        )
        platform = _Platform(fake, standin, ns.max_mentions)
        while line := (await reader.readline()).decode().strip():
            command, *args = line.split()
            if command not in _Platform.COMMANDS:
                raise SystemExit(f"unknown platform command {command!r}")
            await getattr(platform, command)(*args)
            print(f"OK {command}", flush=True)


# -- the orchestrator -----------------------------------------------------------------------------


def botkit_argv_env(
    ns: argparse.Namespace, ready: list[str], workdir: Path, tree: Path = REPO
) -> tuple[list[str], dict[str, str]]:
    api_url, gateway_url, token, base_url, guild_id = ready[1:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "adapters")]),
            "BOTKIT_BOT__ADAPTERS": '["discord"]',
            "BOTKIT_LLM__BACKEND": "external",
            "BOTKIT_LLM__BASE_URL": base_url,
            "BOTKIT_LLM__MODEL": MODEL,
            "BOTKIT_LLM__MAX_IN_FLIGHT": str(max(64, ns.mentions)),
            "BOTKIT_LLM__MAX_QUEUE": str(max(500, 2 * ns.mentions)),
            "BOTKIT_LLM__ADAPTIVE_LIMITS": "false",
            "BOTKIT_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'botkit.db'}",
            "BOTKIT_SERVER__ENABLED": "false",
            "BOTKIT_PERSONAS__WATCH": "false",
            "BOTKIT_DISCORD__TOKEN": token,
            "BOTKIT_DISCORD__API_URL": api_url,
            "BOTKIT_DISCORD__GATEWAY_URL": gateway_url,
            "BOTKIT_DISCORD__GUILD_IDS": f"[{guild_id}]",
            "BOTKIT_DISCORD__MENTION_MODE": "inline",
            "BOTKIT_DISCORD__GUILD_READY_TIMEOUT": "0.5",
        }
    )
    return [sys.executable, "-m", "botkit.cli", "run"], env


def llmcord_argv_env(
    ns: argparse.Namespace, ready: list[str], workdir: Path, tree: Path = REPO
) -> tuple[list[str], dict[str, str]]:
    api_url, gateway_url, token, base_url = ready[1:5]
    argv = [
        sys.executable, str(LLMCORD), "--api-url", api_url, "--gateway-url", gateway_url,
        "--token", token, "--base-url", base_url, "--model", MODEL, "--workdir", str(workdir),
    ]  # fmt: skip
    return argv, {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}


BOTS = {"botkit": botkit_argv_env, "llmcord": llmcord_argv_env}


def bot_spec(spec: str) -> tuple[str, str, Path]:
    """``[label=]name[@tree]`` -> (label, name, the checkout it runs from)."""
    label, _, rest = spec.rpartition("=")
    name, _, tree = rest.partition("@")
    if name not in BOTS:
        raise SystemExit(f"unknown bot {name!r} (one of {', '.join(BOTS)})")
    return label or rest, name, Path(tree).resolve() if tree else REPO


def run_bot(ns: argparse.Namespace, spec: str, logs: Path) -> dict[str, Any]:
    """One bot on a fresh fake Discord + stand-in: push the mentions (or commands), wait, analyse."""
    label, name, tree = bot_spec(spec)
    me = [sys.executable, str(Path(__file__).resolve())]
    platform = Child(
        [*me, "platform", "--tokens-per-second", str(ns.tokens_per_second),
         "--tokens-per-chunk", str(ns.tokens_per_chunk), "--max-mentions", str(ns.mentions),
         *(["--typing-limited"] if ns.typing_limited else [])],
        logs / f"platform-{label}.log", stdin=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "adapters")])},
    )  # fmt: skip  # this checkout's fake and stand-in, whichever botkit the venv has installed
    bot: Child | None = None
    try:
        assert platform.proc.stdout is not None
        ready = platform.proc.stdout.readline().decode().split()
        if not ready or ready[0] != "READY":
            raise RuntimeError(f"the platform did not start; see {platform.log_path}")
        workdir = logs / label
        workdir.mkdir(exist_ok=True)
        argv, env = BOTS[name](ns, ready, workdir, tree)
        bot = Child(argv, logs / f"{label}.log", env, cwd=tree)  # cwd: ``-m`` imports from there first
        platform.ask("connected")
        time.sleep(2.0)  # start-up done (command sync, personas): not counted
        cpu0 = proc_cpu(bot.proc.pid)
        platform.ask(f"{'slash' if ns.slash else 'go'} {ns.mentions} {ns.words}")
        platform.ask(f"wait {ns.mentions} {ns.stall}")
        cpu = proc_cpu(bot.proc.pid) - cpu0
        dump_path = logs / f"dump-{label}.json"
        platform.ask(f"dump {dump_path}")
        dump = json.loads(dump_path.read_text())
    finally:
        if bot is not None:
            bot.stop()
        platform.stop()
    return analyse(label, dump, cpu, ns.mentions)


def analyse(name: str, dump: dict[str, Any], cpu: float, mentions: int) -> dict[str, Any]:
    after_last_token: list[float] = []
    after_mention: list[float] = []
    first_visible: list[float] = []
    partial_edits: list[int] = []
    failures: list[str] = []
    for reply in dump["replies"]:
        versions, index = reply["versions"], reply["index"]
        if not versions:
            failures.append(f"#{index}: no reply")
            continue
        first_visible.append(versions[0][0] - reply["at"])
        # Discord trims the whitespace around a message's text (llmcord's starts with the "\n\n"
        # that follows the reasoning): what a user sees is the stripped text.
        shown = [at for at, text in versions if text.strip() == reply["answer"]]
        if not shown or reply["last_token"] is None:
            failures.append(f"#{index}: final text never shown (last: {versions[-1][1][-80:]!r})")
            continue
        after_last_token.append(max(0.0, shown[0] - reply["last_token"]))
        texts = [text.strip() for _, text in versions]
        partial_edits.append(sum(1 for text in texts if text and text not in (texts[0], reply["answer"])))
        after_mention.append(shown[0] - reply["at"])
        if versions[-1][1].strip() != reply["answer"]:
            failures.append(f"#{index}: the answer was shown, then replaced: {versions[-1][1][-80:]!r}")
    tokens = int(dump["tokens"])
    return {
        "bot": name,
        "mentions": mentions,
        "final_ok": mentions - len(failures),
        "failures": failures,
        "final_after_last_token": [pct(after_last_token, q) for q in (50, 95, 99)],
        "first_visible": [pct(first_visible, q) for q in (50, 95)],
        "final_after_mention": [pct(after_mention, q) for q in (50, 95)],
        "rate_limited": dump["rate_limited"],
        "global_429": dump["global_429"],
        "calls_per_reply": dump["message_calls"] / max(1, mentions),
        "partial_edits": [pct([float(n) for n in partial_edits], 50), float(min(partial_edits, default=0))],
        "cpu_s": cpu,
        "tokens": tokens,
        "cpu_s_per_1k_tokens": cpu / max(1, tokens) * 1000,
        "mean_after_last_token": statistics.mean(after_last_token) if after_last_token else math.nan,
    }


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| bot | final ok | final after last token p50 / p95 / p99 s | first visible p50 / p95 s | "
        "final after mention p50 / p95 s | 429s (global) | REST calls / reply | partial edits / reply "
        "p50 (fewest) | CPU-s / 1k tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        final = " / ".join(f"{v:.1f}" for v in r["final_after_last_token"])
        first = " / ".join(f"{v:.1f}" for v in r["first_visible"])
        mention = " / ".join(f"{v:.1f}" for v in r["final_after_mention"])
        rows.append(
            f"| {r['bot']} | {r['final_ok']}/{r['mentions']} | {final} | {first} | {mention} | "
            f"{r['rate_limited']} ({r['global_429']}) | {r['calls_per_reply']:.2f} | "
            f"{r['partial_edits'][0]:.0f} ({r['partial_edits'][1]:.0f}) | {r['cpu_s_per_1k_tokens']:.3f} |"
        )
    return "\n".join(rows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    role = sub.add_parser("platform", help="(internal) the fake Discord and stand-in process")
    role.add_argument("--tokens-per-second", type=float, required=True)
    role.add_argument("--tokens-per-chunk", type=int, default=1)
    role.add_argument("--max-mentions", type=int, required=True)
    role.add_argument("--typing-limited", action="store_true")
    parser.add_argument("--mentions", type=int, default=100, help="users who @mention the bot at once")
    parser.add_argument("--words", type=int, default=30, help="question words (the answer quotes them)")
    parser.add_argument("--tokens-per-second", type=float, default=20.0, help="per stream")
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument(
        "--stall", type=float, default=90.0, help="give up after this long without a new final"
    )
    parser.add_argument(
        "--bots", default="botkit,llmcord", help="which bots, in order: [label=]name[@checkout]"
    )
    parser.add_argument(
        "--slash", action="store_true", help="/ask commands instead of mentions (default bots: botkit)"
    )
    parser.add_argument(
        "--typing-limited",
        action="store_true",
        help="limit POST /channels/{id}/typing to 5 per 5 s per channel too (its figure is unpublished)",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--logs", help="keep the logs here (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="5 mentions, fast tokens")
    ns = parser.parse_args(argv)
    if ns.slash and ns.bots == parser.get_default("bots"):
        ns.bots = "botkit"
    if ns.smoke:
        ns.mentions, ns.tokens_per_second, ns.stall = 5, 200.0, 30.0
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv)
    if ns.role == "platform":
        asyncio.run(platform_role(ns))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-discord-") as tmp:
        logs = Path(ns.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        results = []
        asks = "slash commands" if ns.slash else "mentions"
        for spec in ns.bots.split(","):
            typing = ", typing limited too" if ns.typing_limited else ""
            print(f"== {spec}: {ns.mentions} {asks} in one channel, limits on{typing}", flush=True)
            results.append(run_bot(ns, spec, logs))
            for failure in results[-1]["failures"][:5]:
                print(f"   {failure}", flush=True)
    print(table(results))
    if ns.json:
        Path(ns.json).write_text(json.dumps({"args": vars(ns), "results": results}, indent=2))
    return 0 if all(not r["failures"] for r in results if r["bot"] != "llmcord") else 1


if __name__ == "__main__":
    sys.exit(main())
