"""Splitting long replies and surfacing the boxed answer."""

from __future__ import annotations

import re

import pytest

from botkit.streaming.formatting import extract_boxed, final_answer_line, split_message


def _without_fences(text: str) -> str:
    return re.sub(r"\s+", "", re.sub(r"^```\w*$", "", text, flags=re.MULTILINE))


@pytest.mark.parametrize("limit", [40, 100, 333, 2000])
def test_split_keeps_everything_within_the_limit_and_fences_balanced(limit: int) -> None:
    text = (
        "Intro paragraph with some words.\n\n"
        + "- item " * 30
        + "\n\n```python\n"
        + "\n".join(f"print({i})  # a comment that is fairly long" for i in range(40))
        + "\n```\n\nA very long line: "
        + "x" * (limit * 2)
        + "\nEnd."
    )
    chunks = split_message(text, limit)
    assert all(len(c) <= limit for c in chunks)
    assert all(c.count("```") % 2 == 0 for c in chunks)
    assert "".join(_without_fences(c) for c in chunks) == _without_fences(text)
    reopened = [c for c in chunks[1:] if c.startswith("```python")]
    if limit < 1000:
        assert reopened, "a code block cut between messages is reopened with its language"


def test_short_text_is_one_message() -> None:
    assert split_message("hello", 2000) == ["hello"]


def test_boxed_extraction_handles_nesting_and_takes_the_last() -> None:
    assert extract_boxed(r"first \boxed{1} then \boxed{\frac{a}{b^{2}}}") == r"\frac{a}{b^{2}}"
    assert extract_boxed("no box") is None
    assert extract_boxed(r"unbalanced \boxed{1") is None
    assert final_answer_line(r"so \boxed{391}.") == "**Final answer:** `391`"


def test_split_measures_with_the_platforms_counting() -> None:
    def escaped(text: str) -> int:  # like Slack's mrkdwn, where & becomes &amp;
        return len(text.replace("&", "&amp;"))

    text = "a & b & c " * 200 + "\n" + "&" * 300
    chunks = split_message(text, 100, escaped)
    assert all(escaped(c) <= 100 for c in chunks)
    assert "".join(chunks).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")
