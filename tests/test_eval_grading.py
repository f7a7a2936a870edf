"""Grading as botkit eval does it: mathematics compared as mathematics, text checks on the final
text, format compliance as the persona promises it, and datasets that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from botkit.eval.dataset import DatasetError, Question, load_dataset
from botkit.eval.grading import check_format, grade, math_equal
from botkit.personas import PersonaRegistry, shipped_personas_dir


@pytest.mark.parametrize(
    ("gold", "predicted"),
    [
        ("\\frac{1}{2}", "0.5"),
        ("\\frac{1}{2}", "1/2"),
        ("\\frac{1}{2}", "\\dfrac12"),
        ("0.5", "\\dfrac{1}{2}"),
        ("\\{2, 3\\}", "\\{3, 2\\}"),
        ("\\{-6, 1\\}", "1, -6"),
        ("(1, 2]", "(1, 2]"),
        ("x^2 + 2x + 1", "(x+1)^2"),
        ("2", "x = 2"),
        ("-58", "-58"),
    ],
)
def test_equal_mathematics_is_equal(gold: str, predicted: str) -> None:
    assert math_equal(gold, predicted)


@pytest.mark.parametrize(
    ("gold", "predicted"),
    [
        ("\\frac{1}{2}", "0.25"),
        ("\\frac{1}{3}", "0.33"),
        ("[1, 2]", "(1, 2]"),
        ("\\{2, 3\\}", "\\{2, 4\\}"),
        ("8", "4"),
        ("x + 1", "x - 1"),
    ],
)
def test_different_mathematics_is_not(gold: str, predicted: str) -> None:
    assert not math_equal(gold, predicted)


def test_the_graded_value_is_the_last_boxed_one_and_an_empty_box_is_no_answer() -> None:
    question = Question(id="q", question="What is 1/2 + 1/4?", answer="\\frac34")
    right = grade(question, "First \\boxed{1} then $\\boxed{0.75}$.", "")
    assert (right.correct, right.extracted) == (True, "0.75")
    echoed = grade(question, "put your final answer within \\boxed{}.", "")
    assert (echoed.correct, echoed.failed) == (False, ["no \\boxed{} answer"])
    wrong = grade(question, "\\boxed{\\frac{3}{5}}", "")
    assert not wrong.correct and wrong.failed == ["boxed '\\\\frac{3}{5}' is not '\\\\frac34'"]


def test_text_checks_read_the_final_text_and_exact_reads_the_answer() -> None:
    question = Question(
        id="q",
        question="Which case decided this?",
        exact="I don't know.",
        contains=["not legal advice"],
        not_contains=["guaranteed"],
        regex=["don'?t know"],
        not_regex=[r"\bv\.\s+[A-Z]"],
    )
    final = "I don't know.\n\n_This is general information, not legal advice._"
    assert grade(question, "I  don't KNOW.", final).correct
    invented = grade(question, "See Smith v. Jones.", "See Smith v. Jones. It is guaranteed.")
    assert invented.failed == [
        'answer is not exactly "I don\'t know."',
        "does not contain 'not legal advice'",
        "contains 'guaranteed'",
        "does not match /don'?t know/",
        "matches /\\bv\\.\\s+[A-Z]/",
    ]


def test_format_compliance_follows_the_persona() -> None:
    registry = PersonaRegistry(shipped_personas_dir())
    registry.load()
    math, legal, general = registry.get("math"), registry.get("legal"), registry.get("general")
    assert math is not None and legal is not None and general is not None
    rendered = math.render("What is 2+2?")
    assert check_format(math, rendered, "\\boxed{4}", "\\boxed{4}").compliant
    assert not check_format(math, rendered, "It is 4.", "It is 4.").compliant
    notice = legal.notices.after
    assert notice is not None
    assert check_format(legal, "q", "An answer.", f"An answer.\n\n{notice}").compliant
    assert not check_format(legal, "q", "An answer.", "An answer.").compliant
    unpromised = check_format(general, general.render("hi"), "hello", "hello")
    assert (unpromised.boxed, unpromised.notice, unpromised.compliant) == (None, None, True)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "question": "q", "anwser": "1"}', "anwser: unknown field (known: id, question, answer"),
        ('{"id": "a", "question": "q"}', "the question has nothing to check"),
        ('{"id": "a", "question": "q", "regex": "(unclosed"}', "is not a valid regular expression"),
        ('{"id": "a", "question": "q", "answer": 2}', "answer: Input should be a valid string"),
        ("{not json", "not valid JSON"),
        ('["a list"]', "each line must be a JSON object"),
    ],
)
def test_a_bad_dataset_line_names_file_line_and_problem(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "ok", "question": "What is 1+1?", "answer": "2"}\n\n' + line + "\n")
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert message in str(caught.value)


def test_duplicate_ids_and_empty_files_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "answer": "1"}\n{"id": "a", "question": "r", "answer": "2"}\n'
    )
    with pytest.raises(DatasetError, match=r"set.jsonl:2: id 'a' is already used on line 1"):
        load_dataset(path)
    path.write_text("// only a comment\n")
    with pytest.raises(DatasetError, match="no questions"):
        load_dataset(path)
