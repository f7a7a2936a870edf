"""Markdown -> Slack mrkdwn."""

from __future__ import annotations

import pytest
from botkit_slack.mrkdwn import to_mrkdwn
from botkit_slack.reply import fit_text


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("[the docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&amp;c=2|the docs>"),
        ("![a cat](https://example.com/cat.png)", "<https://example.com/cat.png|a cat>"),
        ("<https://example.com>", "<https://example.com>"),
        ("[not a link](javascript:alert)", "[not a link](javascript:alert)"),
        ("# Title", "*Title*"),
        ("### A **bold** heading", "*A bold heading*"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("<!channel> hi <@U123>", "&lt;!channel&gt; hi &lt;@U123&gt;"),
        ("- one\n* two\n  - nested", "• one\n• two\n  • nested"),
        ("- [x] done\n- [ ] todo", "☑ done\n☐ todo"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted **text**", "> quoted *text*"),
        ("---", "──────────"),
        ("use `a**b**c < d` here", "use `a**b**c &lt; d` here"),
        ("$x_1 + y_2$ and \\(z_3\\)", "`x_1 + y_2` and `z_3`"),
        ("costs $5 and $10", "costs $5 and $10"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("**Final answer:** `42`", "*Final answer:* `42`"),
    ],
)
def test_inline_and_block_conversions(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_code_blocks_are_kept_verbatim_except_escaping() -> None:
    markdown = "Before **b**\n```python\nx = a**2 if a < b else [t](u)\n# not a heading\n```\nAfter *i*"
    assert to_mrkdwn(markdown) == (
        "Before *b*\n```\nx = a**2 if a &lt; b else [t](u)\n# not a heading\n```\nAfter _i_"
    )


def test_unclosed_code_block_while_streaming() -> None:
    assert to_mrkdwn("```\n**not bold**") == "```\n**not bold**"


def test_fit_text_stays_within_slack_limit() -> None:
    assert fit_text("**hi**") == "*hi*"
    dense = "<>" * 1900  # 3,800 characters of Markdown, 15,200 once escaped
    fitted = fit_text(dense)
    assert len(fitted) <= 4000
    assert fitted.endswith("(cut: too long for one Slack message)")
    medium = "a & b " * 600  # 3,600 characters; 5,400 once converted
    assert len(fit_text(medium)) <= 4000


def test_a_growing_reply_converts_each_complete_line_once() -> None:
    """A streaming reply is converted whole on every edit: its finished lines come from the
    cache (same text as a fresh conversion), the line still being written is converted anew."""
    from botkit_slack import mrkdwn

    lines = [
        f"Point {i}: **bold {i}** and `code {i}` and [a link](https://example.com/{i})" for i in range(6)
    ]
    edits = ["\n".join(lines[:n]) + "\nand the next line is still bein" for n in range(1, 7)]
    fresh = [mrkdwn.to_mrkdwn(text) for text in edits]  # may be served from earlier tests' cache
    mrkdwn._convert_cached.cache_clear()
    assert [mrkdwn.to_mrkdwn(text) for text in edits] == fresh
    info = mrkdwn._convert_cached.cache_info()
    assert info.misses == 6  # each of the six finished lines converted once
    assert info.hits == sum(range(6))  # and taken from the cache on every later edit
    assert fresh[-1].splitlines()[0] == "Point 0: *bold 0* and `code 0` and <https://example.com/0|a link>"
