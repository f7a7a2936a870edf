"""Separate DeepSeek-R1 reasoning from the answer in a stream of text chunks.

vLLM only puts reasoning into its own delta field when it runs with ``--reasoning-parser
deepseek_r1``. Without the parser the model's raw text arrives in ``content``:
``<think>\\n...reasoning...\\n</think>\\n\\nanswer``. Since Feb 2025 the chat template already
ends the prompt with ``<think>\\n``, so the opening tag is usually *missing* from the output.
Chunks may hold several tokens (``--stream-interval``), so a tag can sit anywhere inside a
chunk or be split across two chunks.

Rules of :class:`ReasoningSplitter` (they mirror vLLM's ``deepseek_r1`` parser):

1. The stream starts in *reasoning* mode, tentatively: leading whitespace is dropped.
2. ``<think>`` at the very start (after optional whitespace) only confirms reasoning mode and
   is removed, as is the whitespace right after it. Elsewhere ``<think>`` is plain text.
3. ``</think>`` switches to *answer* mode; everything before it was reasoning (this is what
   makes a missing opening tag work). Newlines right after ``</think>`` are dropped from the
   start of the answer. After the switch nothing is special: the rest is answer text.
4. Nothing is held back except a suffix that could still become a tag (at most 7 characters),
   so reasoning streams as it arrives.
5. ``</think>`` never arrives but ``<think>`` was seen (e.g. ``max_tokens`` hit while
   thinking): everything is reasoning and the answer is empty, as with vLLM's parser.
6. No tag at all by the end: the model did not reason and the whole text was the answer. The
   splitter cannot know this until the end, so it streams the text as reasoning meanwhile;
   :meth:`ReasoningSplitter.finish` then returns one ``answer`` piece with the whole text and
   sets :attr:`ReasoningSplitter.no_tags`. Consumers must then treat the reasoning pieces they
   already received as superseded. A consumer that only accumulates answer pieces still ends
   with the right answer, which is why the correction is a normal piece plus a flag.

:class:`FieldNormalizer` applies the same whitespace rules (1 and 3) to reasoning and answer
that a server delivered in separate fields, so botkit sees identical text whichever way the
server is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PieceKind = Literal["reasoning", "answer"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
_ANSWER_LEAD = "\r\n"


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of text that is either reasoning or answer."""

    kind: PieceKind
    text: str


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ReasoningSplitter:
    """Incremental splitter for ``<think>``-tagged text; see the module docstring for the rules.

    Use one instance per response: ``feed()`` every content chunk, then ``finish()`` once.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._answer_mode = False
        self._may_open = True  # rule 2: <think> still acceptable
        self._trim_reasoning = True  # rules 1/2: still dropping leading whitespace
        self._trim_answer = True  # rule 3: still dropping newlines after </think>
        self._tag_seen = False
        self._untagged: list[str] = []  # text emitted as reasoning before any tag (rule 6)
        self._finished = False
        self.no_tags = False
        """Set by :meth:`finish` when no tag was ever seen: earlier reasoning pieces were the answer."""

    @property
    def in_answer(self) -> bool:
        """True once ``</think>`` has been seen."""
        return self._answer_mode

    def feed(self, text: str) -> list[Piece]:
        """Consume one chunk and return the pieces that are certain so far."""
        if self._finished:
            raise RuntimeError("ReasoningSplitter.feed() called after finish()")
        self._buf += text
        out: list[Piece] = []
        while self._buf:
            if self._answer_mode:
                self._emit_answer(out)
                break
            if not self._step_reasoning(out):
                break
        return out

    def finish(self) -> list[Piece]:
        """Flush held-back text at the end of the stream and apply rules 5 and 6."""
        if self._finished:
            return []
        self._finished = True
        out: list[Piece] = []
        if self._answer_mode:
            self._emit_answer(out)
            return out
        held, self._buf = self._buf, ""
        if not self._tag_seen:
            self.no_tags = True
            whole = "".join(self._untagged) + (held.lstrip() if self._trim_reasoning else held)
            return [Piece("answer", whole)] if whole else []
        if held and not self._trim_reasoning:
            out.append(Piece("reasoning", held))
        return out

    # -- internals -------------------------------------------------------------------------

    def _step_reasoning(self, out: list[Piece]) -> bool:
        """Process the buffer in reasoning mode; False when the rest must wait for more text."""
        if self._trim_reasoning:
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf = ""  # whitespace only: dropped (rule 1), keep waiting
                return False
            if self._may_open:
                if stripped.startswith(OPEN_TAG):
                    self._buf = stripped[len(OPEN_TAG) :]
                    self._may_open = False
                    self._tag_seen = True
                    return True
                if OPEN_TAG.startswith(stripped):
                    self._buf = stripped  # could still become <think>
                    return False
            self._may_open = False
            self._trim_reasoning = False
            self._buf = stripped
        index = self._buf.find(CLOSE_TAG)
        if index >= 0:
            self._emit_reasoning(self._buf[:index], out)
            self._buf = self._buf[index + len(CLOSE_TAG) :]
            self._answer_mode = True
            self._tag_seen = True
            return True
        keep = _partial_suffix(self._buf, CLOSE_TAG)
        ready = self._buf[: len(self._buf) - keep]
        self._buf = self._buf[len(self._buf) - keep :]
        self._emit_reasoning(ready, out)
        return False

    def _emit_reasoning(self, text: str, out: list[Piece]) -> None:
        if not text:
            return
        if not self._tag_seen:
            self._untagged.append(text)
        out.append(Piece("reasoning", text))

    def _emit_answer(self, out: list[Piece]) -> None:
        text, self._buf = self._buf, ""
        if self._trim_answer:
            text = text.lstrip(_ANSWER_LEAD)
            if not text:
                return
            self._trim_answer = False
        if text:
            out.append(Piece("answer", text))


class FieldNormalizer:
    """Whitespace rules of the splitter for reasoning/answer that arrive in separate fields.

    With a reasoning parser vLLM sends the newline after ``<think>`` as reasoning and the
    newlines after ``</think>`` as content; dropping them here makes the result identical to
    what :class:`ReasoningSplitter` produces from tagged text.
    """

    def __init__(self) -> None:
        self._reasoning_started = False
        self._answer_started = False

    def reasoning(self, text: str) -> str:
        """Return the part of a reasoning delta to keep (leading whitespace dropped)."""
        if not self._reasoning_started:
            text = text.lstrip()
            self._reasoning_started = bool(text)
        return text

    def answer(self, text: str) -> str:
        """Return the part of an answer delta to keep (leading newlines dropped)."""
        if not self._answer_started:
            text = text.lstrip(_ANSWER_LEAD)
            self._answer_started = bool(text)
        return text
