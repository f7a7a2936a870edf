"""Markdown as the model writes it -> Slack mrkdwn.

Slack's ``text`` field speaks mrkdwn, not Markdown: ``*bold*``, ``_italic_``, ``~strike~``,
``<url|text>`` links, ``>`` quotes, no headings; ``&``, ``<`` and ``>`` must be escaped as
``&amp;``, ``&lt;``, ``&gt;`` (docs.slack.dev/messaging/formatting-message-text). Code (fenced
blocks and inline spans) keeps its text exactly: only the three control characters are escaped,
which Slack shows as typed. Escaping everything the model wrote also means model output can
never ping ``<!channel>`` or a user.

Inline LaTeX (``$x_1$``, ``\\(...\\)``) becomes an inline code span, because Slack renders no
math and its ``_`` italics would garble subscripts.

Cost: a streaming reply is converted whole on every edit, so this runs once per ``chat.update``.
A line outside code is converted once (:func:`_convert_line` is cached: the lines a reply already
had come back unchanged on its next edit), and each inline pass runs only when the character it
needs is in the line (a pass cannot match without it), so plain prose skips most regexes.
"""

from __future__ import annotations

import functools
import re

__all__ = ["escape", "to_mrkdwn"]

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+#.-]*)\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_MATH = re.compile(r"\$\$(.+?)\$\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\d)")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"&lt;(https?://[^\s&]+(?:&amp;[^\s&]+)*)&gt;")
_BOLD_ITALIC = re.compile(r"(\*\*\*|___)(?=\S)(.+?)(?<=\S)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?!\[[ xX]\])")
_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+")
_QUOTE = re.compile(r"^(\s*)>\s?")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")

# Private-use characters stand in for markup we produced, so later passes leave it alone.
_B = "\ue000"  # bold marker -> "*"
_LT = "\ue001"  # link open -> "<"
_GT = "\ue002"  # link close -> ">"
_CODE = "\ue003"  # index of a protected inline code span follows


def escape(text: str) -> str:
    """Escape Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Convert a (possibly still streaming, unbalanced) Markdown text to Slack mrkdwn."""
    out: list[str] = []
    fence: str | None = None
    lines = markdown.split("\n")
    last = len(lines) - 1  # the line still being written: new on every edit, never cached
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(2)
            out.append(match.group(1) + "```")  # Slack shows a language tag as code: drop it
            continue
        if fence is not None:
            if match and match.group(2).startswith(fence) and not match.group(3):
                fence = None
                out.append(match.group(1) + "```")
            else:
                out.append(escape(line))
            continue
        out.append(_convert_complete_line(line) if index < last else _convert_line(line))
    return "\n".join(out)


#: Complete lines kept converted (the lines of a few hundred live replies), each at most
#: :data:`CACHED_LINE_CHARS` long: at most about 8 MB.
LINE_CACHE_SIZE = 4096
CACHED_LINE_CHARS = 1024


def _convert_complete_line(line: str) -> str:
    """A line that has its newline: it comes back unchanged on the reply's next edit."""
    return _convert_cached(line) if len(line) <= CACHED_LINE_CHARS else _convert_line(line)


def _convert_line(line: str) -> str:
    """One line outside code blocks; pure (see the module's note on cost)."""
    if _RULE.match(line):
        return "──────────"
    heading = _HEADING.match(line)
    if heading:
        return f"*{_inline(heading.group(1)).replace(_B, '')}*".replace(_LT, "<").replace(_GT, ">")
    prefix = ""
    quote = _QUOTE.match(line)
    if quote:
        prefix, line = quote.group(1) + ">", line[quote.end() :]
        if line:
            prefix += " "
    task = _TASK.match(line)
    if task:
        box = "☑" if task.group(2).strip() else "☐"
        prefix, line = f"{prefix}{task.group(1)}{box} ", line[task.end() :]
    else:
        bullet = _BULLET.match(line)
        if bullet:
            prefix, line = f"{prefix}{bullet.group(1)}• ", line[bullet.end() :]
    return prefix + _finish(_inline(line))


_convert_cached = functools.lru_cache(maxsize=LINE_CACHE_SIZE)(_convert_line)


def _inline(text: str) -> str:
    """Convert inline Markdown; the result still holds the private markers (see :func:`_finish`)."""
    spans: list[str] = []

    def protect(code: str) -> str:
        spans.append("`" + escape(code) + "`")
        return f"{_CODE}{len(spans) - 1}{_CODE}"

    if "`" in text:
        text = _INLINE_CODE.sub(lambda m: protect(m.group(2).strip() or m.group(2)), text)
    if "$" in text or "\\" in text:
        text = _MATH.sub(lambda m: protect(next(g for g in m.groups() if g is not None).strip()), text)
    text = escape(text)
    if "](" in text:
        text = _IMAGE_OR_LINK.sub(_link, text)
    if "&lt;http" in text:
        text = _AUTOLINK.sub(lambda m: f"{_LT}{m.group(1)}{_GT}", text)
    if "*" in text or "_" in text:
        text = _BOLD_ITALIC.sub(lambda m: f"{_B}_{m.group(2)}_{_B}", text)
        text = _BOLD.sub(lambda m: f"{_B}{m.group(2)}{_B}", text)
        if "*" in text:
            text = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", text)
    if "~~" in text:
        text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    if not spans and _CODE not in text:
        return text
    return re.sub(f"{_CODE}(\\d+){_CODE}", lambda m: spans[int(m.group(1))], text)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not re.match(r"(https?|mailto):", url):
        return match.group(0)
    label = label.replace("|", "¦")
    return f"{_LT}{url}|{label}{_GT}" if label and label != url else f"{_LT}{url}{_GT}"


def _finish(text: str) -> str:
    return text.replace(_B, "*").replace(_LT, "<").replace(_GT, ">")
