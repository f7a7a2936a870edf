"""The data a persona file declares: its front matter (validated) and access rules.

The front matter is validated with pydantic in strict mode and ``extra="forbid"`` because admins
edit it by hand: a typo such as ``temprature:`` must be an error, not a silently ignored key, and
``temperature: "hot"`` must not be coerced into something surprising.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, field_validator

from botkit.access.rules import WHO_FIELDS, Rule, Who, normalise
from botkit.streaming.notices import Notices
from botkit.streaming.streamer import ReasoningDisplay as ReasoningDisplay  # defined where it is shown

AnswerFormat = Literal["plain", "boxed"]

#: ``math:`` in the front matter: when the model card's math directive is added to a question
#: and the answer is shown as mathematics (its boxed value, formulas as Unicode and a PNG).
#: ``auto``: when the question is mathematics (:mod:`botkit.mathtext.detect`); ``always``; ``never``.
MathMode = Literal["auto", "always", "never"]

NAME_PATTERN = r"^[a-z0-9_-]+$"

#: The range DeepSeek-R1 distills are tuned for; outside it they loop or ramble (design.md).
RECOMMENDED_TEMPERATURE = (0.5, 0.7)


class Access(Who):
    """Who may use a persona, and where: the persona file's ``access:`` block.

    The same vocabulary as the configuration's rules (:mod:`botkit.access.rules`): the lists
    say who may (``users``, ``roles``, ``slack_users``, ``slack_groups``, ``discord_users``,
    ``discord_roles``; anyone listed in any of them), ``deny`` who may not, ``channels`` where
    (``#name`` or an id; always checked in addition). An empty or missing list restricts
    nothing, so a persona without ``access`` is open to all. Matching ignores case and a
    leading ``#``/``@``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: frozenset[StrictStr] = frozenset()
    deny: Who = Field(default_factory=Who)

    @field_validator("channels", mode="before")
    @classmethod
    def _blank_channels(cls, value: Any) -> Any:
        return frozenset() if value is None else value

    @field_validator("deny", mode="before")
    @classmethod
    def _blank_deny(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def is_open(self) -> bool:
        """True when nothing restricts the persona."""
        return self.is_empty and self.deny.is_empty and not self.channels

    def as_rule(self) -> Rule:
        """The block as a configuration rule, decided with the others (:class:`AccessChecker
        <botkit.access.AccessChecker>`).

        Built once per (frozen) block: every turn checks its persona's rule, and building the two
        pydantic models each time was about 1 % of a reply's CPU (docs/benchmarks.md, section 4).
        """
        return self._rule

    @cached_property
    def _rule(self) -> Rule:
        allow = Who(**{name: getattr(self, name) for name in WHO_FIELDS})
        return Rule(allow=allow, deny=self.deny, channels=self.channels)

    def allows(self, user: str, roles: AbstractSet[str], channel: str) -> bool:
        """Whether ``user`` holding ``roles`` may use the persona in ``channel``, judged by the
        platform-neutral lists only (``users``, ``roles``, ``channels`` by literal name or id)."""
        if self.channels and normalise(channel) not in {normalise(c) for c in self.channels}:
            return False
        if not self.users and not self.roles:
            return True
        if self.users and normalise(user) in {normalise(u) for u in self.users}:
            return True
        return bool({normalise(r) for r in roles} & {normalise(r) for r in self.roles})


NOTICE_HINT = (
    "write 'notice: \"text\"' (shown after every answer) or 'notice:' with indented "
    "'before: \"text\"' (shown while it is written) and 'after: \"text\"' lines"
)


class Notice(BaseModel):
    """``notice:`` in its long form: what botkit shows before the answer and appends after it.

    The short form ``notice: "text"`` means ``after`` only, the disclaimer; both kinds are
    botkit's to show (see :mod:`botkit.streaming.notices`), never left to the model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    before: Annotated[str, StringConstraints(strip_whitespace=True)] | None = None
    after: Annotated[str, StringConstraints(strip_whitespace=True)] | None = None

    def notices(self) -> Notices:
        """The runtime form; a blank text is no notice."""
        return Notices(before=self.before or None, after=self.after or None)


class FrontMatter(BaseModel):
    """The YAML block at the top of a persona file, exactly as an admin may write it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    reasoning_display: ReasoningDisplay = "thinking"
    answer_format: AnswerFormat = "plain"
    math: MathMode | None = None  # None: "always" for a boxed persona, else "never" (as before)
    access: Access = Field(default_factory=Access)
    notice: Notice = Field(default_factory=Notice)
    store_reasoning: bool = True

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # It is shown as one row of ``/persona list``.
        if "\n" in value:
            raise ValueError("description must be a single line")
        return value

    @field_validator("access", mode="before")
    @classmethod
    def _blank_access_is_open(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("notice", mode="before")
    @classmethod
    def _notice_shapes(cls, value: Any) -> Any:
        # The short form is the common one (a disclaimer); a list or a number is a mistake that
        # must be an error at its line, not a notice silently missing from legal answers.
        if value is None:
            return {}
        if isinstance(value, str):
            return {"after": value}
        if not isinstance(value, dict):
            raise ValueError(f"a notice is text or a 'before:'/'after:' mapping; {NOTICE_HINT}")
        return value
