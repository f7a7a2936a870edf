"""A persona's notices: text botkit itself shows around every answer, whatever the model wrote.

A legal or medical persona must carry its disclaimer on every answer; a model (a 1.5B distill,
the stand-in) cannot be trusted to write it, so botkit adds it. Two kinds:

* ``before`` is shown at the top of the placeholder and of every partial view while the answer
  streams ("Not medical advice; in an emergency call ..."), so it is read before the answer is.
* ``after`` is appended to every final text that holds answer text — complete, failed or
  interrupted: a partial legal answer without its disclaimer is worse than none — and is stored
  with the answer (the assistant row's ``content``), so the record shows what the user saw.

The helpers are pure string functions: the streamer calls :func:`before_view` on each coalesced
edit (never per token), and the store strips the after-notice from history
(:func:`strip_notice`), since the model should not learn to repeat it.

This module imports nothing from botkit, so both the streamer and the persona model use it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Characters an answer may wrap a notice in when the model copied it anyway (emphasis, quotes).
_WRAPPERS = " \t\n_*\"'“”‘’"


@dataclass(frozen=True)
class Notices:
    """A persona's ``notice:``: shown ``before`` the answer while it streams, appended ``after`` it."""

    before: str | None = None
    after: str | None = None

    def __bool__(self) -> bool:
        return bool(self.before or self.after)


NO_NOTICES = Notices()


def _core(text: str) -> str:
    return text.strip(_WRAPPERS)


def ends_with_notice(text: str, notice: str) -> bool:
    """Whether ``text`` already ends with ``notice`` (ignoring emphasis, quotes and whitespace
    around it), e.g. a model that obeyed an old template: the notice is then not added twice."""
    core = _core(notice)
    return bool(core) and text.rstrip(_WRAPPERS).endswith(core)


def append_notice(text: str, notice: str | None) -> str:
    """``text`` followed by ``notice`` as its own paragraph; unchanged if ``text`` is blank (no
    answer, nothing to disclaim), ``notice`` is empty, or ``text`` already ends with it."""
    body = text.rstrip()
    if not notice or not body.strip() or ends_with_notice(body, notice):
        return text
    return f"{body}\n\n{notice}"


def strip_notice(text: str, notice: str | None) -> str:
    """The inverse of :func:`append_notice` for a stored answer: the answer without the notice."""
    if not notice:
        return text
    body = text.rstrip()
    suffix = f"\n\n{notice}"
    if body.endswith(suffix):
        return body[: -len(suffix)].rstrip()
    return text


def before_view(view: str, notice: str | None) -> str:
    """``view`` (the placeholder or a partial answer) with the before-notice on top."""
    return f"{notice}\n\n{view}" if notice else view
