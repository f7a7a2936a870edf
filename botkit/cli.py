"""The ``botkit`` command.

- ``botkit chat``: the embedded default (console + SQLite + the model backend ``llm.backend``
  picks); ``--thread NAME`` continues a named thread across runs.
- ``botkit run``: every adapter in ``[bot] adapters``.
- ``botkit personas check [DIR]``: validate persona files; non-zero exit on any error.
- ``botkit personas history NAME`` / ``botkit personas diff NAME OLD NEW``: stored persona versions.
- ``botkit audit [--since 7d] [--actor ID] [--json]``: the audit trail.
- ``botkit eval report [--persona P] [--since 30d] [--results FILE...] [--json]``: users' 👍/👎
  per persona version, beside offline eval results (:mod:`botkit.eval.report`).
- ``botkit db upgrade`` / ``botkit db current``: the Alembic schema.
- ``botkit export``, ``botkit db forget``, ``botkit db prune``: data rights (:mod:`botkit.rights_cli`).
- ``botkit standin ...``: the vLLM stand-in server (accepts ``vllm serve`` arguments).
- ``botkit eval PERSONA DATASET [--runs N] [--compare OTHER] ...``: judge a persona (:mod:`botkit.eval`);
  ``botkit eval report ...`` is :mod:`botkit.eval.report`'s, with its own arguments.
- ``botkit --version``.

Start-up cost matters here (the first prompt should appear within 1.5 s on a small machine), so this
module imports only the configuration; each command imports what it uses (the model client,
SQLAlchemy, the adapters and their SDKs) when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit import __version__
from botkit.adapter import Adapter, AdapterError
from botkit.config import ConfigError, Settings, load_settings
from botkit.eventloop import EventLoopChoice
from botkit.eventloop import run as run_on_loop
from botkit.rights_cli import add_db_parsers, add_export_parser

if TYPE_CHECKING:
    from botkit.app import BotApp

EXIT_CHECK = 1
EXIT_CONFIG = 2
EXIT_BACKEND = 3

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Loggers that are botkit's own (``botkit.*``; adapters and plugins named ``botkit_*``): shown at
#: the chosen level. Other libraries' records are shown from WARNING on, unless ``--log-level debug``.
_OWN_LOGGERS = ("botkit.", "botkit_")

#: Warnings of other libraries that say nothing a botkit user can act on, shown only with
#: ``--log-level debug``: (logger, text the message contains). botkit does no voice on Discord.
_NOISE = (("discord.client", "voice will NOT be supported"),)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="botkit", description="Chat bots backed by a self-hosted reasoning model."
    )
    parser.add_argument("--config", help="configuration file (default: $BOTKIT_CONFIG or ./botkit.toml)")
    parser.add_argument("--version", action="version", version=f"botkit {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=None,
        metavar="LEVEL",
        help="botkit's own log level: debug, info, warning, error (default: info for `botkit run`, "
        "warning otherwise); other libraries log from warning on unless it is debug",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat in the terminal (the embedded default)")
    chat.add_argument("--thread", help="thread name to continue (default: [console] thread)")

    sub.add_parser("run", help="run every adapter listed in [bot] adapters")

    status = sub.add_parser("status", help="show a running botkit's backend state (exit 1 if not ready)")
    status.add_argument("--url", help="botkit's status endpoint (default: http://[server] host:port)")
    status.add_argument("--json", action="store_true", help="print the raw JSON")

    _add_persona_parsers(sub)
    _add_audit_parser(sub)
    _add_db_parsers(sub)
    add_export_parser(sub)

    from botkit.eval.cli import add_parser as add_eval_parser

    add_eval_parser(sub)

    # Listed for --help only: main() hands everything after "standin" to the stand-in's own
    # parser (argparse.REMAINDER cannot take a leading "--port" inside a subcommand).
    sub.add_parser("standin", help="run the vLLM stand-in server (accepts `vllm serve` arguments)")
    return parser


def _add_persona_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`botkit personas check|history|diff`."""
    personas = sub.add_parser("personas", help="persona files")
    personas_sub = personas.add_subparsers(dest="personas_command", required=True)
    check = personas_sub.add_parser("check", help="validate a persona folder")
    check.add_argument("directory", nargs="?", help="folder (default: [personas] dir or the shipped ones)")
    history = personas_sub.add_parser("history", help="list a persona's stored versions (time, hash)")
    history.add_argument("name", help="persona name")
    diff = personas_sub.add_parser("diff", help="unified diff of two stored versions of a persona")
    diff.add_argument("name", help="persona name")
    diff.add_argument("old", help="hash (or its start) of the older version")
    diff.add_argument("new", help="hash (or its start) of the newer version")


def _add_audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`botkit audit`: the trail of refusals, admin commands and persona reloads."""
    audit = sub.add_parser("audit", help="show the audit trail (refusals, admin commands, persona reloads)")
    audit.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d, 2w (default: 7d)")
    audit.add_argument("--actor", help="only this user id")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")


def _add_db_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`botkit db upgrade|current` and the maintenance commands of :mod:`botkit.store`."""
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in (
        ("upgrade", "migrate the schema to the newest revision"),
        ("current", "show the revision"),
    ):
        cmd = db_sub.add_parser(name, help=text)
        cmd.add_argument("--url", help="database URL (default: [database] url)")
    add_db_parsers(db_sub)


def _command_args(argv: list[str], *command: str) -> list[str] | None:
    """The arguments after ``command`` (one or more words) if that is the command line's
    command (global options may come first), for commands that parse their own arguments."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 1 if "=" in argv[index] else 2  # --config FILE, --log-level LEVEL
    if argv[index : index + len(command)] == list(command):
        return argv[index + len(command) :]
    return None


def _standin_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``standin`` if that is the command."""
    return _command_args(argv, "standin")


def _global_args(argv: list[str], rest: list[str]) -> argparse.Namespace:
    """The global options (``--config``, ``--log-level``) before a self-parsing command."""
    head = argv[: len(argv) - len(rest)]
    namespace, _ = _parser().parse_known_args([*head[:-2], "run"])
    return namespace


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    standin_args = _standin_args(argv)
    if standin_args is not None:
        from botkit.llm.standin import main as standin_main

        return standin_main(standin_args, prog="botkit standin")
    report_args = _command_args(argv, "eval", "report")
    if report_args is not None:  # `botkit eval report ...`: not a persona named "report"
        from botkit.eval.cli import report_namespace
        from botkit.eval.report import run_report

        options = _global_args(argv, report_args)
        report = report_namespace(report_args)
        setup_logging(options.log_level or "WARNING")
        try:
            return _run(run_report(load_settings(options.config), report))
        except ConfigError as err:
            print(f"botkit: error: {err}", file=sys.stderr)
            return EXIT_CONFIG
    args = _parser().parse_args(argv)
    setup_logging(args.log_level or ("INFO" if args.command == "run" else "WARNING"))
    try:
        settings = load_settings(args.config)
        if args.command == "personas":
            if args.personas_command == "check":
                return _personas_check(settings, args.directory)
            return _run(_personas_history(settings, args))
        if args.command == "audit":
            return _run(_audit(settings, args.since, args.actor, args.json))
        if args.command == "export" or getattr(args, "db_command", None) in ("forget", "prune"):
            return _run(_rights(settings, args))
        if args.command == "db":
            return _run(_db(settings, args.db_command, args.url))
        if args.command == "status":
            return _run(_status(settings, args.url, args.json))
        if args.command == "eval":
            from botkit.eval.cli import main as eval_main

            return eval_main(settings, args)
        from botkit.dbconfig import check_database_url
        from botkit.plugins.loader import check_configuration

        adapters = ["console"] if args.command == "chat" else settings.bot.adapters
        check_configuration(settings, adapters)  # before the model server and the database start
        check_database_url(settings.database)
        if args.command == "chat":
            overrides = {"console": {"thread": args.thread}} if args.thread else {}
            return _run(
                _serve(settings, adapters, overrides, status_server=False, chat=True), settings.bot.event_loop
            )
        return _run(_serve(settings, adapters, {}, status_server=True), settings.bot.event_loop)
    except (ConfigError, AdapterError) as err:
        print(f"botkit: error: {err}", file=sys.stderr)
        return EXIT_CONFIG


class _Quiet(logging.Filter):
    """Lets botkit's own records through at the handler's level, and other libraries' from WARNING.

    Other libraries log at INFO what a user has no use for (alembic's "Context impl SQLiteImpl",
    httpx's "HTTP Request:" lines, discord.py's connection steps); their warnings still show,
    except the few in :data:`_NOISE`. With ``--log-level debug`` everything shows.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.others_from = max(level, logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "botkit" or record.name.startswith(_OWN_LOGGERS):
            return True
        if any(record.name == name and text in str(record.msg) for name, text in _NOISE):
            return False
        return record.levelno >= self.others_from


def setup_logging(level_name: str) -> None:
    """One stderr handler on the root logger: botkit's records from ``level_name`` on, and other
    libraries' quiet unless it is DEBUG (see :class:`_Quiet`)."""
    level = logging.getLevelName(level_name)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if level > logging.DEBUG:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_Quiet(level))


def _run(coro: Coroutine[Any, Any, int], event_loop: EventLoopChoice = "asyncio") -> int:
    """Run ``coro`` on the ``event_loop`` (``[bot] event_loop`` for serving, see
    :mod:`botkit.eventloop`); SIGTERM and SIGINT cancel it, so shutdown runs the same clean path."""

    async def runner() -> int:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return 130

    try:
        return run_on_loop(runner(), event_loop)
    except (ConfigError, AdapterError) as err:
        print(f"botkit: error: {err}", file=sys.stderr)
        return EXIT_CONFIG


async def _serve(
    settings: Settings,
    adapters: list[str],
    overrides: dict[str, dict[str, Any]],
    *,
    status_server: bool,
    chat: bool = False,
) -> int:
    """Serve ``adapters``; ``chat``: stop with :data:`EXIT_BACKEND` when the model server cannot
    start (``botkit run`` keeps serving instead, and ``/healthz`` says why)."""
    from botkit.app import BotApp
    from botkit.gctuning import tune_for_serving
    from botkit.llm.supervisor import BackendStartError
    from botkit.store import StoreError

    failure: str | None = None
    try:
        async with BotApp(settings, status_server=status_server) as app:
            built = app.build_adapters(adapters, overrides)
            if chat:
                failure = await _chat_until_backend_fails(app, built)
            else:
                tune_for_serving()  # what start-up built leaves the collector's scans
                await app.serve(built)
    except BackendStartError as err:
        failure = str(err)
    except StoreError as err:
        print(f"botkit: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if failure is not None:
        print(f"botkit: error: the model server could not be started: {failure}", file=sys.stderr)
        return EXIT_BACKEND
    return 0


async def _chat_until_backend_fails(app: BotApp, adapters: list[Adapter]) -> str | None:
    """Serve the chat; if the supervised model server fails for good first, end it and return why.

    One person at a terminal waits on that server, and it will not start by itself (its
    supervisor gave up: no vLLM, a crash loop), so the chat says why and exits instead of
    apologising for every question. Questions in flight get their apology first (the drain).
    """
    assert app.pool is not None, "serve inside the BotApp"
    if app.pool.failed:  # e.g. no vllm executable: nothing to chat with, so no prompt either
        return app.pool.failure()
    serving = asyncio.create_task(app.serve(adapters), name="botkit-chat")
    failing = asyncio.create_task(app.pool.wait_failed(), name="botkit-chat-backend")
    try:
        await asyncio.wait([serving, failing], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (serving, failing):
            task.cancel()
        await asyncio.wait([serving, failing])
    if failing.cancelled():
        serving.result()  # the chat ended first: :quit, Ctrl-D, or an adapter's error
        return None
    return failing.result()


async def _status(settings: Settings, url: str | None, as_json: bool) -> int:
    """Ask a running botkit how its model backends are; 0 ready, 1 not ready, 2 unreachable."""
    import json

    import aiohttp

    target = url or f"http://{settings.server.host}:{settings.server.port}/healthz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(target) as response,
        ):
            report = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        print(
            f"botkit: error: no botkit answering at {target} ({err}); is `botkit run` running?",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{'ready' if report['ready'] else 'NOT READY'}: {report['waiting']} waiting, up {report['uptime_seconds']}s"
        )
        for backend in report["backends"]:
            line = (
                f"  {backend['url']}: {backend['state']}, {backend['in_flight']}/{backend['capacity']} in flight, "
                f"{backend['served']} served"
            )
            supervisor = backend.get("supervisor")
            if supervisor:
                line += _process_text(supervisor)
            print(line)
            error = (supervisor or {}).get("last_error") or backend.get("last_error")
            if error:
                print("    last error: " + str(error).replace("\n", "\n    "))
    return 0 if report["ready"] else 1


def _process_text(supervisor: dict[str, Any]) -> str:
    """The supervised server's process, for a status line: its pid and uptime only while it runs
    (a server that is starting, restarting or gave up has no process to show)."""
    text = f", pid {supervisor['pid']}, up {supervisor['uptime_seconds']}s" if supervisor.get("pid") else ""
    return text + f", {supervisor['restarts']} restart(s)"


def _personas_check(settings: Settings, directory: str | None) -> int:
    from botkit.personas import check_directory, shipped_personas_dir
    from botkit.plugins.loader import load_plugins

    folder = Path(directory) if directory else (settings.personas.dir or shipped_personas_dir())
    if not folder.is_dir():
        print(f"botkit: error: persona folder {str(folder)!r} does not exist", file=sys.stderr)
        return 1
    plugin_variables = [v for plugin in load_plugins(settings) for v in plugin.variables]
    personas, errors = check_directory(
        folder, extra_variables=plugin_variables, max_bytes=settings.personas.max_file_bytes
    )
    for persona in personas:
        print(f"ok    {persona.path.name}: {persona.name} ({persona.content_hash}) {persona.description}")
    for error in errors:
        print(f"error {error}")
    print(f"{len(personas)} persona(s) ok, {len(errors)} error(s) in {folder}")
    return 1 if errors or not personas else 0


async def _open_store(settings: Settings) -> Any:
    """The configured database (SQLite migrated on the way, as ``botkit chat`` would); one that
    cannot be opened is a configuration error (exit 2, the message says why)."""
    from botkit.dbconfig import open_configured_store
    from botkit.store import StoreError

    try:
        return await open_configured_store(settings.database)
    except StoreError as err:
        raise ConfigError(str(err)) from err


async def _audit(settings: Settings, since: str, actor: str | None, as_json: bool) -> int:
    """Print the audit rows of the last ``since``, oldest first; ``--json``: one object per line."""
    import json

    from botkit.audit import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as err:
        print(f"botkit: error: --since: {err}", file=sys.stderr)
        return EXIT_CONFIG
    store = await _open_store(settings)
    try:
        rows = await store.audit_entries(since=window, actor=actor)
    finally:
        await store.close()
    for row in rows:
        if as_json:
            print(json.dumps(row.as_json(), ensure_ascii=False))
            continue
        where = "/".join(p for p in (row.platform, row.workspace, row.channel) if p)
        detail = " ".join(f"{k}={v}" for k, v in row.detail.items() if v is not None)
        print(f"{row.at:%Y-%m-%d %H:%M:%S}  {where}  {row.actor or '-'}  {row.action}  {detail}")
    return 0


async def _rights(settings: Settings, args: argparse.Namespace) -> int:
    """``botkit export`` / ``botkit db forget|prune`` on the configured database."""
    from botkit.rights_cli import run

    store = await _open_store(settings)
    try:
        return await run(store, args)
    finally:
        await store.close()


async def _personas_history(settings: Settings, args: argparse.Namespace) -> int:
    """``history NAME`` / ``diff NAME OLD NEW`` from the stored versions. The persona folder's
    current files are stored first (as a start of botkit would), so the version on disk is listed
    even if no bot has loaded it yet."""
    from botkit.audit import VersionNotFound, history_lines, pick_version, version_diff, version_text
    from botkit.personas import PersonaRegistry, shipped_personas_dir
    from botkit.plugins.loader import load_plugins

    variables = [v for plugin in load_plugins(settings) for v in plugin.variables]
    registry = PersonaRegistry(
        settings.personas.dir or shipped_personas_dir(),
        extra_variables=variables,
        max_file_bytes=settings.personas.max_file_bytes,
    )
    registry.load()
    current = registry.get(args.name)
    store = await _open_store(settings)
    try:
        if current is not None and (text := version_text(current)) is not None:
            await store.remember_persona_version(current.name, current.content_hash, text)
        versions = await store.persona_versions(args.name)
    finally:
        await store.close()
    if not versions:
        print(f"botkit: error: no stored versions of persona {args.name!r}", file=sys.stderr)
        return EXIT_CHECK
    if args.personas_command == "history":
        for line in history_lines(versions, current.content_hash if current else None):
            print(line)
        return 0
    try:
        old, new = pick_version(args.name, versions, args.old), pick_version(args.name, versions, args.new)
    except VersionNotFound as err:
        print(f"botkit: error: {err}", file=sys.stderr)
        return EXIT_CHECK
    sys.stdout.write(version_diff(args.name, old, new))
    return 0


async def _db(settings: Settings, command: str, url: str | None) -> int:
    from botkit.store import StoreError, current_revision, head_revision, upgrade

    target = url or settings.database.url
    try:
        if command == "current" and (missing := _missing_sqlite_file(target)) is not None:
            print(
                f"botkit: no database at {missing} yet; `botkit db upgrade` creates it "
                "(so do `botkit chat` and `botkit run`)",
                file=sys.stderr,
            )
            return EXIT_CHECK
        if command == "upgrade":
            await upgrade(target)
        revision = await current_revision(target)
    except StoreError as err:
        from botkit.dbconfig import WHERE

        print(f"botkit: error: {'--url' if url else WHERE}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"database revision: {revision or 'none'} (newest: {head_revision()})")
    return 0


def _missing_sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL when it does not exist (asking its revision would create it empty)."""
    from botkit.store.database import parse_url

    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return None if Path(database).expanduser().exists() else database


if __name__ == "__main__":
    sys.exit(main())
