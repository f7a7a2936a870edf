"""ReasoningSplitter: tags split anywhere, missing opening tag, no tags, unclosed reasoning."""

from __future__ import annotations

import itertools

import pytest

from botkit.llm.reasoning import FieldNormalizer, Piece, ReasoningSplitter

STREAM = "<think>\nLet me think.\n</think>\n\nThe answer is 4."
REASONING = "Let me think.\n"
ANSWER = "The answer is 4."


def run(chunks: list[str]) -> tuple[str, str, ReasoningSplitter]:
    """Feed chunks, finish, and return (reasoning, answer) as a consumer would assemble them."""
    splitter = ReasoningSplitter()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    tail = splitter.finish()
    if splitter.no_tags:
        pieces = tail  # earlier reasoning pieces were the answer (rule 6)
    else:
        pieces += tail
    assert all(p.text for p in pieces), "no empty pieces"
    reasoning = "".join(p.text for p in pieces if p.kind == "reasoning")
    answer = "".join(p.text for p in pieces if p.kind == "answer")
    return reasoning, answer, splitter


def splits(text: str, parts: int) -> list[list[str]]:
    """Every way to cut ``text`` into ``parts`` non-empty chunks."""
    out = []
    for cuts in itertools.combinations(range(1, len(text)), parts - 1):
        bounds = (0, *cuts, len(text))
        out.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return out


def test_whole_stream_in_one_chunk() -> None:
    assert run([STREAM])[:2] == (REASONING, ANSWER)


def test_every_two_chunk_split_gives_the_same_result() -> None:
    for chunks in splits(STREAM, 2):
        assert run(chunks)[:2] == (REASONING, ANSWER), chunks


def test_every_three_chunk_split_gives_the_same_result() -> None:
    for chunks in splits(STREAM, 3):
        assert run(chunks)[:2] == (REASONING, ANSWER), chunks


def test_character_by_character() -> None:
    assert run(list(STREAM))[:2] == (REASONING, ANSWER)


def test_missing_opening_tag_is_reasoning_before_close_tag() -> None:
    text = "Let me think.\n</think>\n\nThe answer is 4."
    for chunks in [[text], *splits(text, 2)]:
        reasoning, answer, splitter = run(chunks)
        assert (reasoning, answer) == (REASONING, ANSWER), chunks
        assert not splitter.no_tags


def test_tags_inside_multi_token_chunks() -> None:
    chunks = ["<think>\nLet", " me think.\n</think>\n\nThe", " answer is 4."]
    assert run(chunks)[:2] == (REASONING, ANSWER)
    chunks = ["<think>\nLet me think.\n</thi", "nk>\n\nThe answer is 4."]
    assert run(chunks)[:2] == (REASONING, ANSWER)


def test_reasoning_streams_before_the_close_tag_and_holds_only_a_tag_prefix() -> None:
    splitter = ReasoningSplitter()
    assert splitter.feed("<think>\n") == []
    assert splitter.feed("Step one.") == [Piece("reasoning", "Step one.")]
    assert splitter.feed(" Then </th") == [Piece("reasoning", " Then ")]
    assert splitter.feed("inking about") == [Piece("reasoning", "</thinking about")]
    assert splitter.feed("</think>\n") == []
    assert splitter.in_answer
    assert splitter.feed("\nYes.") == [Piece("answer", "Yes.")]
    assert splitter.finish() == []


def test_no_tags_at_all_is_an_answer() -> None:
    splitter = ReasoningSplitter()
    streamed = splitter.feed("\nParis is the capital") + splitter.feed(" of France.")
    assert [p.kind for p in streamed] == ["reasoning", "reasoning"]  # tentative
    assert splitter.finish() == [Piece("answer", "Paris is the capital of France.")]
    assert splitter.no_tags


def test_no_tags_with_a_held_back_prefix() -> None:
    reasoning, answer, splitter = run(["2 < 3 and x </t"])
    assert (reasoning, answer) == ("", "2 < 3 and x </t")
    assert splitter.no_tags


def test_unclosed_reasoning_has_an_empty_answer() -> None:
    reasoning, answer, splitter = run(["<think>\nStill thinking", " about it </thin"])
    assert (reasoning, answer) == ("Still thinking about it </thin", "")
    assert not splitter.no_tags


def test_leading_whitespace_before_open_tag() -> None:
    assert run(["  \n", "<th", "ink>", "\n", STREAM.removeprefix("<think>\n")])[:2] == (REASONING, ANSWER)


def test_open_tag_later_in_reasoning_is_text() -> None:
    reasoning, answer, _ = run(["Hmm, <think> is a tag.</think>\n\nOK"])
    assert (reasoning, answer) == ("Hmm, <think> is a tag.", "OK")


def test_empty_answer_trap() -> None:
    reasoning, answer, _ = run(["<think>\nHmm.\n</think>", "\n\n"])
    assert (reasoning, answer) == ("Hmm.\n", "")


def test_empty_reasoning() -> None:
    assert run(["<think>\n\n</think>\n\nHi."])[:2] == ("", "Hi.")
    assert run(["</think>\n\nHi."])[:2] == ("", "Hi.")


def test_feed_after_finish_is_an_error() -> None:
    splitter = ReasoningSplitter()
    splitter.finish()
    with pytest.raises(RuntimeError):
        splitter.feed("x")


def test_field_normalizer_matches_the_splitter() -> None:
    normalizer = FieldNormalizer()
    reasoning = "".join(normalizer.reasoning(t) for t in ["\n", "Let me think.", "\n"])
    answer = "".join(normalizer.answer(t) for t in ["\n", "\n", "The answer", " is 4."])
    assert (reasoning, answer) == (REASONING, ANSWER)
