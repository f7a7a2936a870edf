"""Plugin text filters, applied to every version of a reply a user sees and to what is stored.

A redaction filter must never leak: it runs on the whole rendered view before each edit (not on
deltas, which could split an address), on continuation messages, notices and the final text, and
on the stored answer; the stored question and reasoning only when the filter asks for them. A
filter that raises fails closed: the text it was given is withheld, and the error is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from botkit.plugins.api import TextFilter

log = logging.getLogger("botkit.pipeline.filters")

WITHHELD = "⚠️ _This text was withheld: a text filter failed on it (the error was logged)._"


class TextFilters:
    def __init__(self, filters: Sequence[TextFilter] = ()) -> None:
        self._filters = list(filters)

    def __bool__(self) -> bool:
        return bool(self._filters)

    def shown(self, text: str) -> str:
        """What a user may see of ``text`` (and what is stored of an answer)."""
        return self._apply(text, self._filters)

    def question(self, text: str) -> str:
        return self._apply(text, [f for f in self._filters if f.question])

    def reasoning(self, text: str) -> str:
        return self._apply(text, [f for f in self._filters if f.reasoning])

    def for_display(self) -> Callable[[str], str] | None:
        """The streamer's hook (None when no plugin filters, so nothing runs per edit)."""
        return self.shown if self._filters else None

    @staticmethod
    def _apply(text: str, filters: Sequence[TextFilter]) -> str:
        for text_filter in filters:
            try:
                text = text_filter.fn(text)
            except Exception:
                log.exception("text filter %r failed; withholding the text", text_filter.fn)
                return WITHHELD
        return text
