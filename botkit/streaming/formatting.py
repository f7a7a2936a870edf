"""Platform-neutral text shaping: splitting long replies and surfacing the ``\\boxed{}`` answer.

Splitting is done on Markdown as the model wrote it, before an adapter converts it to its
platform's dialect, so every adapter gets the same guarantees: nothing is dropped, and a fenced
code block cut between two messages is closed at the end of one and reopened (with its language)
at the start of the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")


def split_message(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into chunks that ``measure`` at most ``limit``, preferring line boundaries.

    Joining the chunks (after removing the fence lines this function added) gives back the text.
    ``measure`` is the platform's length after conversion (plain ``len`` by default); it must be
    additive (a concatenation measures the sum of its parts), because each line is measured once
    and the chunk's size is kept as a running total: this runs on every edit of a long answer.
    """
    if limit < 20:
        raise ValueError("limit must be at least 20 characters")
    if measure(text) <= limit:
        return [text]
    chunks: list[str] = []
    current, size = "", 0
    open_fence: str | None = None  # the fence line that opened the code block we are inside

    def close_suffix() -> str:
        return "\n" + _fence_marker(open_fence) if open_fence else ""

    def reopened() -> tuple[str, int]:
        start = (open_fence + "\n") if open_fence else ""
        return start, measure(start)

    for line in text.splitlines(keepends=True):
        line_size = measure(line)
        while line:
            room = limit - size - (measure(close_suffix()) if open_fence else 0)
            if line_size <= room:
                current, size = current + line, size + line_size
                open_fence = _track_fence(open_fence, line)
                line = ""
                continue
            if current.strip() and current.strip() != (open_fence or "").strip():
                # Start a new message rather than breaking this line.
                chunks.append(current.rstrip("\n") + close_suffix())
                current, size = reopened()
                continue
            # The line alone does not fit: break it at the last space inside the room.
            piece = _break_long_line(line, room, measure)
            current += piece
            line = line[len(piece) :]
            line_size = measure(line)
            chunks.append(current.rstrip("\n") + close_suffix())
            current, size = reopened()
    if current.strip():
        chunks.append(current.rstrip("\n"))
    return chunks


def _fence_marker(fence_line: str) -> str:
    match = _FENCE.match(fence_line)
    return match.group(1) if match else "```"


def _track_fence(open_fence: str | None, line: str) -> str | None:
    match = _FENCE.match(line.rstrip("\n"))
    if not match:
        return open_fence
    if open_fence is None:
        return line.rstrip("\n").strip()
    if match.group(1).startswith(_fence_marker(open_fence)) and not match.group(2).strip():
        return None
    return open_fence


def _break_long_line(line: str, room: int, measure: Callable[[str], int] = len) -> str:
    room = max(room, 1)
    if measure(line) <= room:
        return line
    low, high = 1, min(len(line), room)  # the longest prefix that measures within the room
    while low < high:
        mid = (low + high + 1) // 2
        if measure(line[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    cut = line.rfind(" ", 0, low)
    if cut < low // 2:
        cut = low
    else:
        cut += 1
    return line[:cut]


_BOXED = "\\boxed{"


def extract_boxed(text: str) -> str | None:
    """The content of the last balanced ``\\boxed{...}`` in ``text``, or None."""
    start = text.rfind(_BOXED)
    while start != -1:
        depth = 0
        i = start + len(_BOXED) - 1
        for i in range(start + len(_BOXED) - 1, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start + len(_BOXED) : i].strip()
        start = text.rfind(_BOXED, 0, start)
    return None


def final_answer_line(answer: str, shape: Callable[[str], str] | None = None) -> str | None:
    """The line that shows a math reply's boxed answer prominently, or None if there is none.

    ``shape`` turns the value into what users read (a math turn's LaTeX-to-Unicode)."""
    value = extract_boxed(answer)
    if value is None:
        return None
    return f"**Final answer:** `{shape(value) if shape is not None else value}`"


def quote(text: str) -> str:
    """Markdown block quote of ``text`` (used to show reasoning when a persona asks for it)."""
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())
