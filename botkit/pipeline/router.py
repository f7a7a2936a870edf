"""The router: what the core does with each accepted message.

It is the :class:`~botkit.adapter.AdapterHost` adapters talk to. ``submit`` records the delivery
under the store's unique constraint *before* any work (so a redelivered event is a no-op, even in
another process), then answers in a tracked task. Every accepted event then passes the one
middleware chain (:mod:`botkit.pipeline.chain`) as a :class:`~botkit.plugins.api.Request`:

- a command (``kind="command"``) runs its plugin's handler inside the chain;
- otherwise each message handler whose matcher accepts the message (``kind="handler"``) runs
  inside the chain, until one does not pass it on;
- everything else is a model turn (``kind="turn"``) with the chosen persona (channel binding,
  then the command's persona, then the default), answered by :class:`~botkit.pipeline.turns.TurnRunner`.

A :class:`~botkit.plugins.api.Refusal` from anywhere before the reply started is shown to the
asker alone where the platform can.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botkit.access import AccessChecker, AccessConfigError, AccessRefused, Directory
from botkit.adapter import AdapterError, CommandSpec, FeedbackReceipt, PersonaChoice, Submission
from botkit.audit import record
from botkit.events import ConversationKey, FeedbackEvent, IncomingMessage, LiveReply
from botkit.pipeline.chain import MiddlewareChain
from botkit.pipeline.feedback import FeedbackHandler
from botkit.plugins.api import (
    CommandContext,
    Plugin,
    Refusal,
    RegisteredCommand,
    RegisteredHandler,
    Request,
    TurnResult,
)
from botkit.streaming.formatting import split_message

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.personas import Persona, PersonaRegistry
    from botkit.pipeline.turns import TurnRunner
    from botkit.store import ConversationStore, StoredPersonaVersion

log = logging.getLogger("botkit.pipeline.router")

EMPTY_QUESTION_HINT = "Hi! Ask me a question and I will answer here."


class Router:
    def __init__(
        self,
        *,
        settings: Settings,
        store: ConversationStore,
        turns: TurnRunner,
        personas: PersonaRegistry,
        plugins: Sequence[Plugin[Any]],
        plugin_configs: dict[str, Any],
        chain: MiddlewareChain | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.turns = turns
        self.personas = personas
        self.plugins = list(plugins)
        self.plugin_configs = plugin_configs
        self.chain = chain or MiddlewareChain()
        self._commands: dict[str, RegisteredCommand] = {}
        for plugin in self.plugins:
            for command in plugin.commands:
                name = command.spec.qualified_name
                if name in self._commands:
                    other = self._commands[name].plugin.name
                    raise ValueError(f"command {name!r} is defined by both {other!r} and {plugin.name!r}")
                self._commands[name] = command
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.feedback = FeedbackHandler(store, enabled=settings.feedback.enabled)
        access = settings.access
        self.access = AccessChecker(
            settings.personas.bindings,
            access.personas,
            group_cache_seconds=access.group_cache_seconds,
            lookup_timeout=access.lookup_timeout,
            extra_channels={"[bot] admin_channels": settings.bot.admin_channels},
        )

    # -- AdapterHost --------------------------------------------------------------------------
    @property
    def commands(self) -> tuple[CommandSpec, ...]:
        return tuple(c.spec for c in self._commands.values())

    async def submit(
        self, message: IncomingMessage, reply: LiveReply, *, redeliverable: bool = False
    ) -> Submission:
        """Accept ``message``: persisted before this returns, answered in a task afterwards.

        Accepted means persisted: the delivery claim, the question and a ``queued`` reply row
        are one transaction (:meth:`ConversationStore.accept
        <botkit.store.ConversationStore.accept>`) written before this returns, so the adapter
        acknowledges the platform only for a message that is on disk; the turn task then
        adopts those rows (persona, placeholder id) rather than inserting its own. A write
        that fails is never followed by an ack and silence: with ``redeliverable`` (the
        platform sends an unacknowledged event again: Slack's Events API) nothing is shown and
        the submission says :attr:`~botkit.adapter.Submission.unrecorded`, so the adapter
        withholds the ack; otherwise the asker is told at once to ask again.
        """
        if not self.accepting:
            await self._respond_safely(
                reply, "⚠️ botkit is restarting and not taking new questions; please ask again shortly."
            )
            return Submission(False)
        try:
            inbox = await self.store.accept(
                message.platform,
                message.delivery_id,
                (message.workspace, message.channel, message.thread),
                user_text=self.turns.filters.question(message.text),
                user_id=message.user,
            )
        except Exception:
            log.exception("could not record delivery %s/%s", message.platform, message.delivery_id)
            if redeliverable:
                return Submission(False, unrecorded=True)
            await self._respond_safely(
                reply,
                "⚠️ botkit could not take your question right now (its database is unavailable); "
                "please ask again in a minute.",
            )
            return Submission(False)
        if inbox is None:
            log.info("duplicate delivery %s/%s ignored", message.platform, message.delivery_id)
            return Submission(False)
        self.turns.inbox[(message.platform, message.delivery_id)] = inbox
        task = asyncio.create_task(self._handle(message, reply), name=f"botkit-turn-{message.delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Submission(True, task)

    async def vote(self, event: FeedbackEvent) -> FeedbackReceipt:
        """A 👍/👎 click: stored with its turn (:mod:`botkit.pipeline.feedback`)."""
        return await self.feedback.vote(event)

    async def post_first(
        self, reply: LiveReply, *, where: ConversationKey | None = None, persona: str | None = None
    ) -> str:
        """The placeholder of the persona the turn will most likely have (the channel's
        binding, else ``persona``, else the default), so its before-notice is on it from the
        first moment; an unknown persona gets the plain placeholder (the turn refuses it)."""
        chosen = None
        if where is not None:
            draft = IncomingMessage(where.platform, where.workspace, where.channel, where.thread, "", "", "")
            try:
                chosen = self.choose_persona(draft, persona)
            except Refusal:
                chosen = None
        return await self.turns.streamer_for(reply, chosen).post_first()

    def personas_for(
        self, user: str, roles: frozenset[str], channel: str, platform: str = "", workspace: str = ""
    ) -> list[PersonaChoice]:
        asker = IncomingMessage(platform, workspace, channel, "", user, "", "", user_roles=roles)
        return [
            PersonaChoice(p.name, p.description)
            for p in self.personas.all()
            if self.access.allows_now(asker, p.name, p.access.as_rule())
        ]

    async def attach_directory(self, directory: Directory) -> None:
        """An adapter's directory: channel names in the configuration and in the persona files
        loaded now are resolved (one that does not exist stops start-up, named), and access
        rules may look up groups. A name an edited persona brings later is looked up when a
        question arrives (a name that does not match refuses: rules fail closed)."""
        for persona in self.personas.all():
            channels = persona.access.as_rule().channels
            if channels:
                self.access.extra_channels[f"persona {persona.name!r} (its file's access: channels)"] = list(
                    channels
                )
        try:
            await self.access.attach(directory)
        except AccessConfigError as err:
            raise AdapterError(str(err)) from None

    def channel_renamed(self, platform: str, channel_id: str, name: str) -> None:
        """A channel's new name (Slack ``channel_rename``, Discord channel update): bindings
        keep it, since they are pinned to its id."""
        self.access.renamed(platform, channel_id, name)

    # -- Conversation (what plugin handlers may ask) -------------------------------------------
    async def converse(
        self,
        message: IncomingMessage,
        reply: LiveReply,
        *,
        persona: str | None,
        question: str | None,
        parent: Request | None = None,
        over_binding: bool = False,
    ) -> TurnResult:
        """A model turn through the chain; a refusal before the reply started is a notice.

        ``over_binding``: ``persona`` wins over the channel's binding (``/math``), unless the
        binding says ``allow_commands = false``; then the asker is told, never silently answered
        by the bound persona."""
        try:
            request = Request(
                message,
                "turn",
                message.text if question is None else question,
                command=parent.command if parent else None,
                plugin=parent.plugin if parent else None,
                persona=self.choose_persona(message, persona, over_binding=over_binding),
                parent=parent,
            )
            return await self.turns.run(request, reply, self.chain, self._check_turn)
        except Refusal as refusal:
            await self._audit_refusal(message, refusal, persona)
            await self.respond(reply, str(refusal), notice=True)
            return TurnResult("refused", error=str(refusal))

    async def _check_turn(self, request: Request) -> None:
        """After the whole chain agreed: the question is not empty and the persona open to the
        asker here (:class:`~botkit.access.AccessChecker`: file, configuration and binding)."""
        message, persona = request.message, request.persona
        assert persona is not None
        if not request.question.strip():
            raise AuditedRefusal(EMPTY_QUESTION_HINT, rule="empty_question", persona=persona.name)
        try:
            await self.access.check(message, persona.name, persona.access.as_rule())
        except AccessRefused as refused:
            text = _access_refusal(
                persona.name, persona.access.roles, message.platform, self.settings.access.contact
            )
            raise AuditedRefusal(text, rule=refused.rule, persona=persona.name) from None

    async def respond(self, reply: LiveReply, text: str, *, notice: bool = False) -> None:
        """Answer without the model; a ``notice`` (refusal, error) goes to the asker alone if possible."""
        streamer = self.turns.streamer_for(reply, None)
        if notice and await streamer.notice(text):
            return
        first = split_message(text, reply.max_chars, reply.measure)[0]
        await streamer.start(first)
        await streamer.finish(text)

    def status(self) -> dict[str, Any]:
        """The model backends' state, for admin commands (the same data as ``/healthz``)."""
        return self.turns.pool.status()

    async def persona_versions(self, name: str) -> list[StoredPersonaVersion]:
        """The stored versions of a persona, for the admin commands (``/persona history``)."""
        return await self.store.persona_versions(name)

    def is_admin(self, message: IncomingMessage) -> bool:
        bot = self.settings.bot
        return message.user in bot.admin_users or bool(message.user_roles & set(bot.admin_roles))

    def choose_persona(
        self, message: IncomingMessage, requested: str | None, *, over_binding: bool = False
    ) -> Persona:
        """Channel binding, then the requested persona, then the default; with ``over_binding``
        the requested persona first, where the binding allows commands."""
        bound = self.access.binding_for(message)
        if bound is not None:
            key, binding = bound
            if requested and over_binding and requested != binding.persona:
                if binding.allow_commands:
                    return self._persona_or_refuse(requested, "requested")
                command = f"/{message.command}" if message.command else f"the {requested!r} persona"
                raise AuditedRefusal(
                    f"⚠️ This channel answers only with the {binding.persona!r} persona, so {command} is "
                    "not available here. Ask it in another channel or in a direct message to the bot.",
                    rule="binding",
                    persona=requested,
                )
            return self._persona_or_refuse(binding.persona, f"bound to this channel ({key})")
        if requested:
            return self._persona_or_refuse(requested, "requested")
        return self._persona_or_refuse(self.settings.personas.default, "the default ([personas] default)")

    def _persona_or_refuse(self, name: str, why: str) -> Persona:
        persona = self.personas.get(name)
        if persona is None and any(error.path.stem == name for error in self.personas.errors):
            raise AuditedRefusal(  # its file is there but broken (the log and admin notices say how)
                f"⚠️ Persona {name!r} ({why}) is not available right now: its file does not load. "
                "The bot's admins can see why with `botkit personas check`.",
                rule="unknown_persona",
                persona=name,
            )
        if persona is None:
            known = ", ".join(self.personas.names()) or "none"
            raise AuditedRefusal(
                f"⚠️ Persona {name!r} ({why}) does not exist. Available personas: {known}.",
                rule="unknown_persona",
                persona=name,
            )
        return persona

    # -- the work -----------------------------------------------------------------------------
    async def _handle(self, message: IncomingMessage, reply: LiveReply) -> None:
        try:
            await self._route(message, reply)
        except Refusal as refusal:
            await self._audit_refusal(message, refusal, None)
            await self._respond_safely(reply, str(refusal))
        except asyncio.CancelledError:
            # Cut before its turn adopted the inbox rows (a shutdown): they stay queued, and the
            # next start tells the asker (see botkit.app._mark_interrupted).
            raise
        except Exception as err:
            log.exception("handling %s failed", message.delivery_id)
            await self._respond_safely(
                reply, f"⚠️ Something went wrong inside botkit ({type(err).__name__}); it was logged."
            )
        await self._close_inbox(message)

    async def _close_inbox(self, message: IncomingMessage) -> None:
        """Handled without a model turn adopting its inbox rows (a command, a handler, a refusal):
        the user saw its answer or notice, so the rows go; a restart must not answer it again."""
        inbox = self.turns.inbox.pop((message.platform, message.delivery_id), None)
        if inbox is None:
            return
        try:
            await self.store.close_inbox(inbox)
        except Exception:
            log.exception("could not close the inbox rows of %s (answered already)", message.delivery_id)

    async def _respond_safely(self, reply: LiveReply, text: str) -> None:
        """A notice that must not raise: if even it fails, the failure is logged, not lost."""
        try:
            await self.respond(reply, text, notice=True)
        except Exception:
            log.exception("could not show the user this notice: %s", text)

    async def _route(self, message: IncomingMessage, reply: LiveReply) -> None:
        limit = self.settings.bot.max_message_chars
        if len(message.text) > limit:
            raise AuditedRefusal(
                f"⚠️ Your message is {len(message.text):,} characters long; the limit is {limit:,}. "
                "Please shorten it or split it into parts.",
                rule="message_too_long",
            )
        if message.command:
            await self._run_command(message, reply)
            return
        for plugin in self.plugins:
            for handler in plugin.handlers:
                if handler.matcher(message) and await self._run_handler(message, reply, handler):
                    return
        await self.converse(message, reply, persona=None, question=None)

    async def _run_command(self, message: IncomingMessage, reply: LiveReply) -> None:
        assert message.command is not None
        command = self._commands.get(message.command)
        if command is None:
            names = ", ".join(sorted(self._commands)) or "none"
            raise AuditedRefusal(
                f"⚠️ Unknown command {message.command!r}. Commands: {names}.", rule="unknown_command"
            )
        if command.spec.admin_only and not self.is_admin(message):
            raise AuditedRefusal(f"⚠️ {command.spec.qualified_name!r} is for admins only.", rule="admin_only")
        if command.spec.admin_only:
            await record(
                self.store,
                "admin_command",
                **_where(message),
                detail={"command": command.spec.qualified_name, "args": dict(message.args)},
            )
        request = Request(
            message, "command", message.text, command=command.spec.qualified_name, plugin=command.plugin.name
        )

        async def invoke(final: Request) -> TurnResult:
            ctx = self._context(final, reply, command.plugin)
            await command.handler(ctx)
            return ctx.outcome()

        await self.chain.run(request, invoke)

    async def _run_handler(
        self, message: IncomingMessage, reply: LiveReply, handler: RegisteredHandler
    ) -> bool:
        """True if the handler took the message; False if it (or the chain) passed it on."""
        request = Request(message, "handler", message.text, plugin=handler.plugin.name)

        async def invoke(final: Request) -> TurnResult:
            ctx = self._context(final, reply, handler.plugin)
            if await handler.handler(ctx) is False:
                return TurnResult("passed")
            return ctx.outcome()

        return (await self.chain.run(request, invoke)).status != "passed"

    async def _audit_refusal(self, message: IncomingMessage, refusal: Refusal, persona: str | None) -> None:
        """Who was refused, where, with which persona and which kind of rule (``admin_only``,
        ``channels``, ``deny``, ``users/roles``, ``membership_unavailable``; ``middleware`` for a plugin's refusal, ``other`` for the
        core's own: ``empty_question``, ``message_too_long``, ``unknown_command``, ``unknown_persona``)."""
        rule = "middleware"
        if isinstance(refusal, AuditedRefusal):
            rule, persona = refusal.rule, refusal.persona or persona
        detail = {"rule": rule, "persona": persona, "command": message.command, "notice": str(refusal)}
        await record(self.store, "refusal", **_where(message), detail=detail)

    def _context(self, request: Request, reply: LiveReply, plugin: Plugin[Any]) -> CommandContext[Any]:
        return CommandContext(
            request.message, reply, self.plugin_configs.get(plugin.name), self.personas, self, request
        )

    async def drain(self, grace: float) -> None:
        """Stop taking messages, let replies in flight finish for ``grace`` seconds, then cut them.

        A cut reply is not left silently half-written: the engine edits it to say it was
        interrupted and stores the turn as interrupted.
        """
        self.accepting = False
        try:
            await self._drain(grace)
        finally:
            await self.turns.checkpoints.close()  # no turn streams any more

    async def _drain(self, grace: float) -> None:
        pending = set(self._tasks)
        if not pending:
            return
        log.info(
            "waiting up to %.0fs for %d repl%s in flight",
            grace,
            len(pending),
            "y" if len(pending) == 1 else "ies",
        )
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=15)


class AuditedRefusal(Refusal):
    """A refusal of the core's own rules, saying which kind of rule refused (for the audit only:
    the user is never told which rule)."""

    def __init__(self, text: str, *, rule: str, persona: str | None = None) -> None:
        super().__init__(text)
        self.rule = rule
        self.persona = persona


def _where(message: IncomingMessage) -> dict[str, Any]:
    """An audit row's platform, workspace, channel and actor."""
    return {
        "platform": message.platform,
        "workspace": message.workspace,
        "channel": message.channel,
        "actor": message.user,
    }


def _access_refusal(persona: str, roles: frozenset[str], platform: str, contact: str) -> str:
    """Says whom to ask, never which rule: on a chat platform the configured contact
    (``[access] contact``) or an admin; on the console (with ``[console] operator = false``) the
    roles the persona wants and the key that sets them, since whoever runs it is the admin."""
    text = f"⚠️ The {persona!r} persona is not available to you in this channel."
    if platform != "console":
        if contact.strip():
            return f"{text} To ask for access, contact {contact.strip()}."
        return f"{text} Ask an admin of this bot for access."
    wanted = sorted(roles)
    example = json.dumps(["admin", wanted[0] if wanted else "admin"])
    return (
        f"{text} It is open to the roles: {', '.join(wanted) or 'none'}. On the console your roles are "
        f"[console] roles, e.g. BOTKIT_CONSOLE__ROLES='{example}' botkit chat."
    )
