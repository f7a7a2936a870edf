"""The router: what the core does with each accepted message.

It is the :class:`~botkit.adapter.AdapterHost` adapters talk to. ``submit`` records the delivery
under the store's unique constraint *before* any work (so a redelivered event is a no-op, even in
another process), then answers in a tracked task: a command goes to its plugin, a matching
message handler gets a chance, and everything else is a conversation with the chosen persona
(channel binding, then the command's persona, then the default), after an access check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botkit.adapter import CommandSpec, PersonaChoice, Submission
from botkit.events import IncomingMessage, LiveReply
from botkit.plugins.api import CommandContext, Plugin, Refusal, RegisteredCommand, TurnResult
from botkit.streaming.formatting import split_message

if TYPE_CHECKING:
    from botkit.config import Settings
    from botkit.personas import Persona, PersonaRegistry
    from botkit.pipeline.turns import TurnRunner
    from botkit.store import ConversationStore

log = logging.getLogger("botkit.pipeline.router")


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.turns = turns
        self.personas = personas
        self.plugins = list(plugins)
        self.plugin_configs = plugin_configs
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

    # -- AdapterHost --------------------------------------------------------------------------
    @property
    def commands(self) -> tuple[CommandSpec, ...]:
        return tuple(c.spec for c in self._commands.values())

    async def submit(self, message: IncomingMessage, reply: LiveReply) -> Submission:
        if not self.accepting:
            await self.respond(
                reply, "⚠️ botkit is restarting and not taking new questions; please ask again shortly."
            )
            return Submission(False)
        try:
            claimed = await self.store.claim_delivery(message.platform, message.delivery_id)
        except Exception:
            log.exception("could not record delivery %s/%s", message.platform, message.delivery_id)
            await self._respond_safely(
                reply,
                "⚠️ botkit could not take your question right now (its database is unavailable); "
                "please ask again in a minute.",
            )
            return Submission(False)
        if not claimed:
            log.info("duplicate delivery %s/%s ignored", message.platform, message.delivery_id)
            return Submission(False)
        task = asyncio.create_task(self._handle(message, reply), name=f"botkit-turn-{message.delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Submission(True, task)

    async def post_first(self, reply: LiveReply) -> str:
        return await self.turns.streamer_for(reply, None).post_first()

    def personas_for(self, user: str, roles: frozenset[str], channel: str) -> list[PersonaChoice]:
        return [
            PersonaChoice(p.name, p.description)
            for p in self.personas.all()
            if p.access.allows(user, roles, channel)
        ]

    # -- Conversation (what plugin handlers may ask) -------------------------------------------
    async def converse(
        self, message: IncomingMessage, reply: LiveReply, *, persona: str | None, question: str | None
    ) -> TurnResult:
        chosen = self.choose_persona(message, persona)
        text = message.text if question is None else question
        if not text.strip():
            await self.respond(reply, "Hi! Ask me a question and I will answer here.", notice=True)
            return TurnResult("refused", error="empty question")
        if not chosen.access.allows(message.user, message.user_roles, message.channel):
            refusal = f"⚠️ The {chosen.name!r} persona is not available to you in this channel."
            await self.respond(reply, refusal, notice=True)
            return TurnResult("refused", error=refusal)
        return await self.turns.run_turn(message, reply, chosen, text)

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

    def is_admin(self, message: IncomingMessage) -> bool:
        bot = self.settings.bot
        return message.user in bot.admin_users or bool(message.user_roles & set(bot.admin_roles))

    def choose_persona(self, message: IncomingMessage, requested: str | None) -> Persona:
        """Channel binding, then the requested persona, then the default."""
        bindings = self.settings.personas.bindings
        for key in (
            f"{message.platform}:{message.workspace}/{message.channel}",
            f"{message.platform}:{message.channel}",
            message.channel,
        ):
            bound = bindings.get(key)
            if bound:
                return self._persona_or_refuse(bound, f"bound to this channel ({key})")
        if requested:
            return self._persona_or_refuse(requested, "requested")
        return self._persona_or_refuse(self.settings.personas.default, "the default ([personas] default)")

    def _persona_or_refuse(self, name: str, why: str) -> Persona:
        persona = self.personas.get(name)
        if persona is None:
            known = ", ".join(self.personas.names()) or "none"
            raise Refusal(f"⚠️ Persona {name!r} ({why}) does not exist. Available personas: {known}.")
        return persona

    # -- the work -----------------------------------------------------------------------------
    async def _handle(self, message: IncomingMessage, reply: LiveReply) -> None:
        try:
            await self._route(message, reply)
        except Refusal as refusal:
            await self._respond_safely(reply, str(refusal))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("handling %s failed", message.delivery_id)
            await self._respond_safely(
                reply, f"⚠️ Something went wrong inside botkit ({type(err).__name__}); it was logged."
            )

    async def _respond_safely(self, reply: LiveReply, text: str) -> None:
        """A notice that must not raise: if even it fails, the failure is logged, not lost."""
        try:
            await self.respond(reply, text, notice=True)
        except Exception:
            log.exception("could not show the user this notice: %s", text)

    async def _route(self, message: IncomingMessage, reply: LiveReply) -> None:
        limit = self.settings.bot.max_message_chars
        if len(message.text) > limit:
            raise Refusal(
                f"⚠️ Your message is {len(message.text):,} characters long; the limit is {limit:,}. "
                "Please shorten it or split it into parts."
            )
        if message.command:
            command = self._commands.get(message.command)
            if command is None:
                names = ", ".join(sorted(self._commands)) or "none"
                raise Refusal(f"⚠️ Unknown command {message.command!r}. Commands: {names}.")
            if command.spec.admin_only and not self.is_admin(message):
                raise Refusal(f"⚠️ {command.spec.qualified_name!r} is for admins only.")
            await command.handler(self._context(message, reply, command.plugin))
            return
        for plugin in self.plugins:
            for handler in plugin.handlers:
                if (
                    handler.matcher(message)
                    and await handler.handler(self._context(message, reply, plugin)) is not False
                ):
                    return
        await self.converse(message, reply, persona=None, question=None)

    def _context(
        self, message: IncomingMessage, reply: LiveReply, plugin: Plugin[Any]
    ) -> CommandContext[Any]:
        return CommandContext(message, reply, self.plugin_configs.get(plugin.name), self.personas, self)

    async def drain(self, grace: float) -> None:
        """Stop taking messages, let replies in flight finish for ``grace`` seconds, then cut them.

        A cut reply is not left silently half-written: the engine edits it to say it was
        interrupted and stores the turn as interrupted.
        """
        self.accepting = False
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
