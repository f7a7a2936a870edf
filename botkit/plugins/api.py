"""What a plugin author writes against.

A plugin is a :class:`Plugin` object exposed through the ``botkit.plugins`` entry-point group and
enabled by name in ``[plugins] enabled``. It declares, with decorators:

- commands: one definition that each adapter exposes its own way (a Discord slash command, a
  Slack slash command or keyword, a console ``:command``);
- message handlers with a matcher, tried in order before the default conversation;
- middleware around the conversation engine: code before ``await next_step(turn)`` may rewrite the
  question, add template variables or refuse; code after it may post-process the answer;
- lifecycle hooks run at start-up and shutdown;
- a typed configuration section (``[plugins.settings.NAME]``) validated with its pydantic model.

Handlers get everything through the context object they are called with, never through module
globals, so one plugin object can serve several bots (and tests) in one process.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from botkit.adapter import CommandSpec, OptionSpec
from botkit.events import IncomingMessage, LiveReply

if TYPE_CHECKING:
    from botkit.personas import Persona, PersonaRegistry

ConfigT = TypeVar("ConfigT", bound=BaseModel)

TurnStatus = Literal["complete", "failed", "interrupted", "refused"]


class Refusal(Exception):
    """Raised by middleware or a handler to decline a message; ``str(self)`` is shown to the user."""


@dataclass
class Turn:
    """One question on its way to the model; middleware may change it before the prompt is built."""

    message: IncomingMessage
    question: str
    persona: Persona
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class TurnResult:
    """The outcome of a turn; middleware after the answer may change ``answer`` (what is shown)."""

    status: TurnStatus
    answer: str = ""
    reasoning: str = ""
    error: str | None = None
    notices: list[str] = field(default_factory=list)


NextStep = Callable[[Turn], Awaitable[TurnResult]]
BoundMiddleware = Callable[[Turn, NextStep], Awaitable[TurnResult]]


@dataclass(frozen=True)
class PluginContext(Generic[ConfigT]):
    """Given to lifecycle hooks: the plugin's own validated config and the persona registry."""

    plugin: Plugin[ConfigT]
    config: ConfigT | None
    personas: PersonaRegistry


class Conversation(Protocol):
    """What a handler may ask of the core (the router implements it)."""

    async def converse(
        self, message: IncomingMessage, reply: LiveReply, *, persona: str | None, question: str | None
    ) -> TurnResult: ...

    async def respond(self, reply: LiveReply, text: str, *, notice: bool = False) -> None: ...

    def is_admin(self, message: IncomingMessage) -> bool: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CommandContext(Generic[ConfigT]):
    """Given to command and message handlers."""

    message: IncomingMessage
    reply: LiveReply
    config: ConfigT | None
    personas: PersonaRegistry
    _core: Conversation

    @property
    def args(self) -> dict[str, str]:
        return dict(self.message.args)

    @property
    def is_admin(self) -> bool:
        return self._core.is_admin(self.message)

    async def converse(self, *, persona: str | None = None, question: str | None = None) -> TurnResult:
        """Answer with the model (streamed). A channel's bound persona wins over ``persona``."""
        return await self._core.converse(self.message, self.reply, persona=persona, question=question)

    async def respond(self, text: str, *, notice: bool = False) -> None:
        """Answer directly, without the model (help texts, lists, admin output).

        ``notice=True`` shows it to the asker alone where the platform can (Discord ephemeral).
        """
        await self._core.respond(self.reply, text, notice=notice)

    def backend_status(self) -> dict[str, Any]:
        """The model backends' state (what ``botkit status`` and ``/healthz`` show)."""
        return self._core.status()


Middleware = Callable[[Turn, NextStep, PluginContext[Any]], Awaitable[TurnResult]]
"""``async def mw(turn, next_step, ctx) -> TurnResult``: code before ``await next_step(turn)``
runs before the prompt is built, code after it sees the answer before the final edit."""

CommandHandler = Callable[[CommandContext[Any]], Awaitable[None]]
MessageHandler = Callable[[CommandContext[Any]], Awaitable[bool | None]]
Hook = Callable[[PluginContext[Any]], Awaitable[None]]
Matcher = Callable[[IncomingMessage], bool]


@dataclass(frozen=True)
class RegisteredCommand:
    spec: CommandSpec
    handler: CommandHandler
    plugin: Plugin[Any]


@dataclass(frozen=True)
class RegisteredHandler:
    matcher: Matcher
    handler: MessageHandler
    plugin: Plugin[Any]


class Plugin(Generic[ConfigT]):
    """A named bundle of commands, handlers, middleware and hooks."""

    def __init__(
        self,
        name: str,
        *,
        description: str = "",
        config: type[ConfigT] | None = None,
        variables: Sequence[str] = (),
    ) -> None:
        """``variables`` names the template variables this plugin's middleware may set in
        ``turn.variables``; persona files may then use them (they render empty when unset)."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"plugin name {name!r} must be lowercase letters, digits and _")
        self.name = name
        self.description = description
        self.config_model = config
        self.variables = tuple(variables)
        self.commands: list[RegisteredCommand] = []
        self.handlers: list[RegisteredHandler] = []
        self.middleware_chain: list[Middleware] = []
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []

    def command(
        self,
        name: str,
        description: str,
        *,
        options: Sequence[OptionSpec] = (),
        group: str | None = None,
        admin_only: bool = False,
    ) -> Callable[[CommandHandler], CommandHandler]:
        spec = CommandSpec(name, description, tuple(options), group, admin_only)

        def register(handler: CommandHandler) -> CommandHandler:
            self.commands.append(RegisteredCommand(spec, handler, self))
            return handler

        return register

    def on_message(
        self, matcher: str | re.Pattern[str] | Matcher
    ) -> Callable[[MessageHandler], MessageHandler]:
        """Handle messages the matcher accepts (a regex is searched in the text).

        The handler returns False to pass the message on to the next handler / the model.
        """
        if isinstance(matcher, str | re.Pattern):
            pattern = re.compile(matcher) if isinstance(matcher, str) else matcher

            def match(message: IncomingMessage) -> bool:
                return pattern.search(message.text) is not None

            test: Matcher = match
        else:
            test = matcher

        def register(handler: MessageHandler) -> MessageHandler:
            self.handlers.append(RegisteredHandler(test, handler, self))
            return handler

        return register

    def middleware(self, fn: Middleware) -> Middleware:
        self.middleware_chain.append(fn)
        return fn

    def on_startup(self, fn: Hook) -> Hook:
        self.startup_hooks.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        self.shutdown_hooks.append(fn)
        return fn

    def __repr__(self) -> str:
        return f"Plugin({self.name!r})"
