"""What a plugin author writes against.

A plugin is a :class:`Plugin` object exposed through the ``botkit.plugins`` entry-point group and
enabled by name in ``[plugins] enabled``. It declares, with decorators:

- commands: one definition that each adapter exposes its own way (a Discord slash command, a
  Slack slash command or keyword, a console ``:command``);
- message handlers with a matcher, tried in order before the default conversation;
- middleware around **every** accepted event: a command, a message handler, a model turn. Code
  before ``await next_step(request)`` may refuse (raise :class:`Refusal`), rewrite the question,
  set template variables, or pick or veto the persona; code after it observes the result (and for
  a model turn may post-process the answer before the final edit);
- text filters applied to every version of a reply a user sees (each partial edit, each
  continuation message, the final text, notices) and to what is stored;
- lifecycle hooks run at start-up and shutdown;
- a typed configuration section (``[plugins.settings.NAME]``) validated with its pydantic model.

Handlers get everything through the context object they are called with, never through module
globals, so one plugin object can serve several bots (and tests) in one process.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel

from botkit.adapter import CommandSpec, OptionSpec
from botkit.events import IncomingMessage, LiveReply

if TYPE_CHECKING:
    from botkit.personas import Persona, PersonaRegistry
    from botkit.store import StoredPersonaVersion

ConfigT = TypeVar("ConfigT", bound=BaseModel)

TurnStatus = Literal["complete", "failed", "interrupted", "refused", "passed"]
"""``passed``: a message handler declined the message (returned False), so routing went on."""

EventKind = Literal["command", "handler", "turn"]
EVENT_KINDS: frozenset[EventKind] = frozenset(("command", "handler", "turn"))


class Refusal(Exception):
    """Raised by middleware or a handler to decline a message; ``str(self)`` is shown to the user."""


@dataclass
class Request:
    """One accepted event on its way through the middleware chain.

    ``kind`` says what will handle it: a plugin ``command`` (``command`` names it), a message
    ``handler`` (``plugin`` names its plugin), or a model ``turn``. A turn that a command or
    handler starts (``ctx.converse()``) passes the chain again as its own request, with
    ``parent`` set to the command's request: a middleware that counts events (a rate limit)
    checks ``request.parent is None``; one that guards access sees both.

    Middleware may change ``question`` (what the handler or the model gets), ``variables``
    (template variables the persona may use) and, for a turn, ``persona``; the access rules of
    the persona finally chosen are checked after the whole chain agreed.
    """

    message: IncomingMessage
    kind: EventKind
    question: str
    command: str | None = None
    plugin: str | None = None
    persona: Persona | None = None
    variables: dict[str, str] = field(default_factory=dict)
    parent: Request | None = None


Turn = Request
"""The name this type had when middleware wrapped model turns only; kept for plugins written then."""


@dataclass
class TurnResult:
    """The outcome of an event; middleware after ``next_step`` may change ``answer`` of a turn."""

    status: TurnStatus
    answer: str = ""
    reasoning: str = ""
    error: str | None = None
    notices: list[str] = field(default_factory=list)


NextStep = Callable[[Request], Awaitable[TurnResult]]
BoundMiddleware = Callable[[Request, NextStep], Awaitable[TurnResult]]


@dataclass(frozen=True)
class PluginContext(Generic[ConfigT]):
    """Given to hooks and middleware: the plugin's own validated config and the persona registry.

    ``config`` is an instance of the plugin's config model (its defaults when the section is
    absent); None only for a plugin that declares no model.
    """

    plugin: Plugin[ConfigT]
    config: ConfigT
    personas: PersonaRegistry


class Conversation(Protocol):
    """What a handler may ask of the core (the router implements it)."""

    async def converse(
        self,
        message: IncomingMessage,
        reply: LiveReply,
        *,
        persona: str | None,
        question: str | None,
        parent: Request | None = None,
        over_binding: bool = False,
    ) -> TurnResult: ...

    async def respond(self, reply: LiveReply, text: str, *, notice: bool = False) -> None: ...

    def is_admin(self, message: IncomingMessage) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    async def persona_versions(self, name: str) -> list[StoredPersonaVersion]: ...


@dataclass(frozen=True)
class CommandContext(Generic[ConfigT]):
    """Given to command and message handlers.

    ``request`` is the event as the middleware chain left it: ``question`` is the (possibly
    rewritten) text; ``message`` is what the user sent.
    """

    message: IncomingMessage
    reply: LiveReply
    config: ConfigT
    personas: PersonaRegistry
    _core: Conversation
    request: Request | None = None
    _turns: list[TurnResult] = field(default_factory=list)

    @property
    def args(self) -> dict[str, str]:
        return dict(self.message.args)

    @property
    def text(self) -> str:
        """The command's free text or the message, after middleware rewrote it."""
        return self.request.question if self.request is not None else self.message.text

    @property
    def is_admin(self) -> bool:
        return self._core.is_admin(self.message)

    async def converse(
        self, *, persona: str | None = None, question: str | None = None, over_binding: bool = False
    ) -> TurnResult:
        """Answer with the model (streamed). A channel's bound persona wins over ``persona``,
        unless ``over_binding`` (a command that *means* its persona, like ``/math``) and the
        binding allows commands; a binding with ``allow_commands = false`` refuses it, and the
        asker is told so privately.

        ``question`` defaults to :attr:`text`. The turn passes the middleware chain as its own
        request (``kind="turn"``, ``parent`` = this command's request).
        """
        result = await self._core.converse(
            self.message,
            self.reply,
            persona=persona,
            question=self.text if question is None else question,
            parent=self.request,
            over_binding=over_binding,
        )
        self._turns.append(result)
        return result

    def outcome(self) -> TurnResult:
        """What the handler did, for middleware after ``next_step``: its last turn's result, or
        ``complete`` for a handler that only responded."""
        return self._turns[-1] if self._turns else TurnResult("complete")

    async def respond(self, text: str, *, notice: bool = False) -> None:
        """Answer directly, without the model (help texts, lists, admin output).

        ``notice=True`` shows it to the asker alone where the platform can (Discord ephemeral).
        An empty text is refused: it would leave the placeholder as the final message.
        """
        if not text.strip():
            raise ValueError("ctx.respond() needs a non-empty text (the user would see only 'Thinking…')")
        await self._core.respond(self.reply, text, notice=notice)

    def backend_status(self) -> dict[str, Any]:
        """The model backends' state (what ``botkit status`` and ``/healthz`` show)."""
        return self._core.status()

    async def persona_versions(self, name: str) -> list[StoredPersonaVersion]:
        """Every stored version of persona ``name`` (full text, hash, first seen), oldest first."""
        return await self._core.persona_versions(name)


Middleware = Callable[[Request, NextStep, PluginContext[Any]], Awaitable[TurnResult]]
"""``async def mw(request, next_step, ctx) -> TurnResult``: code before ``await next_step(request)``
runs before the handler (or, for a turn, before the placeholder and the prompt); code after it
sees the result (for a turn: the answer, before the final edit)."""

TextFilterFn = Callable[[str], str]
"""``def redact(text) -> text``: pure and fast; it runs on every edit of every reply."""

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


@dataclass(frozen=True)
class RegisteredMiddleware:
    fn: Middleware
    kinds: frozenset[EventKind]


@dataclass(frozen=True)
class TextFilter:
    """A filter on reply text; ``question`` / ``reasoning``: also apply it to what is stored of those."""

    fn: TextFilterFn
    question: bool = False
    reasoning: bool = False


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
        self.middleware_chain: list[RegisteredMiddleware] = []
        self.text_filters: list[TextFilter] = []
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

    @overload
    def middleware(self, fn: Middleware, /) -> Middleware: ...

    @overload
    def middleware(
        self, fn: None = None, /, *, kinds: Collection[EventKind] = ...
    ) -> Callable[[Middleware], Middleware]: ...

    def middleware(
        self, fn: Middleware | None = None, /, *, kinds: Collection[EventKind] = EVENT_KINDS
    ) -> Middleware | Callable[[Middleware], Middleware]:
        """Register middleware; ``@plugin.middleware`` sees every event, and
        ``@plugin.middleware(kinds={"turn"})`` only those kinds (the chain skips it for others)."""
        chosen = frozenset(kinds)
        unknown = chosen - EVENT_KINDS
        if unknown or not chosen:
            raise ValueError(f"middleware kinds must be some of {sorted(EVENT_KINDS)}, got {sorted(kinds)}")

        def register(middleware: Middleware) -> Middleware:
            self.middleware_chain.append(RegisteredMiddleware(middleware, chosen))
            return middleware

        return register(fn) if fn is not None else register

    def text_filter(
        self, *, question: bool = False, reasoning: bool = False
    ) -> Callable[[TextFilterFn], TextFilterFn]:
        """Register a filter for every version of a reply a user sees and the stored answer;
        ``question=True`` / ``reasoning=True`` also filter the stored question / reasoning."""

        def register(fn: TextFilterFn) -> TextFilterFn:
            self.text_filters.append(TextFilter(fn, question=question, reasoning=reasoning))
            return fn

        return register

    def on_startup(self, fn: Hook) -> Hook:
        self.startup_hooks.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        self.shutdown_hooks.append(fn)
        return fn

    def __repr__(self) -> str:
        return f"Plugin({self.name!r})"
