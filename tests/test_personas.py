"""Persona files: the shipped ones, every error an admin can make (at the right line), the sandbox,
access rules, and the registry's "a broken edit never takes a persona offline" promise."""

from __future__ import annotations

import asyncio
import pickle
import textwrap
from pathlib import Path

import pytest

from botkit.personas import (
    Access,
    PersonaError,
    PersonaRegistry,
    check_directory,
    load_persona,
    shipped_personas_dir,
)

MATH_DIRECTIVE = "Please reason step by step, and put your final answer within \\boxed{}."


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.md"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def persona_text(name: str, body: str, extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: A test persona\n{extra}---\n{body}"


# --- shipped personas ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> PersonaRegistry:
    registry = PersonaRegistry(shipped_personas_dir())
    assert registry.load() == []
    return registry


def test_shipped_dir_is_the_repository_folder() -> None:
    assert shipped_personas_dir() == Path(__file__).resolve().parents[1] / "personas"


def test_shipped_personas_load(shipped: PersonaRegistry) -> None:
    assert shipped.names() == ["general", "legal", "math", "medical"]
    for persona in shipped.all():
        assert persona.path.stem == persona.name
        assert "\n" not in persona.description
        assert persona.temperature is not None
        assert 0.5 <= persona.temperature <= 0.7
        assert persona.top_p == 0.95
        assert len(persona.content_hash) == 16
        assert persona.version == f"{persona.name}@{persona.content_hash}"


def test_check_directory_on_shipped_personas() -> None:
    personas, errors = check_directory(shipped_personas_dir())
    assert errors == []
    assert sorted(p.name for p in personas) == ["general", "legal", "math", "medical"]


@pytest.mark.parametrize("name", ["general", "legal", "math", "medical"])
def test_shipped_personas_render_the_question(shipped: PersonaRegistry, name: str) -> None:
    persona = shipped.get(name)
    assert persona is not None
    text = persona.render("How do I compute 17 * 23?", user_name="Ada", platform="slack", channel="c")
    assert "How do I compute 17 * 23?" in text
    assert "{{" not in text
    assert "{%" not in text
    assert text == text.strip()


def test_math_persona_has_boxed_directive(shipped: PersonaRegistry) -> None:
    math = shipped.get("math")
    assert math is not None
    assert math.answer_format == "boxed"
    text = math.render("What is 1 + 1?")
    assert text.startswith("What is 1 + 1?")
    assert text.endswith(MATH_DIRECTIVE)


def test_legal_persona_disclaims_and_is_restricted(shipped: PersonaRegistry) -> None:
    legal = shipped.get("legal")
    assert legal is not None
    # botkit shows the disclaimer itself (notice:); the template no longer asks the model for it.
    text = legal.render("Can my landlord keep my deposit?")
    assert "Can my landlord keep my deposit?" in text
    assert "not legal advice" in (legal.notices.after or "")
    assert "consult a qualified lawyer" in (legal.notices.after or "")
    assert "not legal advice" in (legal.notices.before or "")
    assert not legal.store_reasoning
    assert legal.access.roles == frozenset({"legal"})
    assert "restricted" in legal.description
    assert not legal.access.allows("U1", frozenset(), "general")
    assert legal.access.allows("U1", frozenset({"legal"}), "general")


def test_medical_persona_disclaims_and_is_restricted(shipped: PersonaRegistry) -> None:
    medical = shipped.get("medical")
    assert medical is not None
    text = medical.render("Is a headache after a fall serious?")
    assert "emergency services" in text  # the template still says when to send people there
    after = medical.notices.after or ""
    assert "not a diagnosis" in after
    assert "clinician" in after
    assert "emergency services" in after
    assert "emergency number" in (medical.notices.before or "")
    assert not medical.store_reasoning
    assert medical.access.roles == frozenset({"medical"})
    assert "restricted" in medical.description
    assert not medical.access.allows("U1", frozenset({"legal"}), "general")


def test_general_persona_is_open(shipped: PersonaRegistry) -> None:
    general = shipped.get("general")
    assert general is not None
    assert general.access.is_open
    assert general.access.allows("anyone", frozenset(), "anywhere")


# --- errors, each at the file's own line -------------------------------------------------

ERROR_CASES = {
    "no front matter": ("Hello {{ question }}\n", 1, "missing front matter"),
    "unterminated": ("---\nname: bad\ndescription: x\n{{ question }}\n", 1, "unterminated front matter"),
    "malformed yaml": ("---\nname: bad\ndescription: x: y\n---\n{{ question }}\n", 3, "malformed YAML"),
    "malformed yaml later": (
        "---\nname: bad\ndescription: x\ntemperature: [0.6\ntop_p: 0.9\n---\n",
        5,
        "malformed YAML",
    ),
    "empty front matter": ("---\n---\n{{ question }}\n", 1, "front matter is empty"),
    "not a mapping": ("---\n- a\n- b\n---\n", 2, "key: value"),
    "unknown key": (
        "---\nname: bad\ndescription: x\ntemprature: 0.6\n---\n",
        4,
        "unknown key 'temprature'",
    ),
    "unknown access key": (
        "---\nname: bad\ndescription: x\naccess:\n  roles: [a]\n  groups: [b]\n---\n",
        6,
        "unknown key 'access.groups'",
    ),
    "duplicate key": (
        "---\nname: bad\ndescription: x\ntop_p: 0.9\ntop_p: 0.8\n---\n",
        5,
        "duplicate key 'top_p' (first set on line 4)",
    ),
    "wrong type": ("---\nname: bad\ndescription: x\ntemperature: hot\n---\n", 4, "'temperature'"),
    "out of range": ("---\nname: bad\ndescription: x\n\ntemperature: 2.5\n---\n", 5, "'temperature'"),
    "bool is not a number": ("---\nname: bad\ndescription: x\nmax_tokens: true\n---\n", 4, "'max_tokens'"),
    "float max_tokens": ("---\nname: bad\ndescription: x\nmax_tokens: 1.5\n---\n", 4, "'max_tokens'"),
    "bad literal": ("---\nname: bad\ndescription: x\nreasoning_display: loud\n---\n", 4, "reasoning_display"),
    "bad list item": (
        "---\nname: bad\ndescription: x\naccess:\n  roles:\n    - legal\n    - 3\n---\n",
        7,
        "'access.roles.1'",
    ),
    "access not a list": (
        "---\nname: bad\ndescription: x\naccess:\n  roles: legal\n---\n",
        5,
        "access.roles",
    ),
    "multi-line description": (
        "---\nname: bad\ndescription: |\n  one\n  two\n---\n",
        3,
        "single line",
    ),
    "missing description": ("---\nname: bad\n---\n{{ question }}\n", 1, "missing required key 'description'"),
    "name mismatch": ("---\ndescription: x\nname: other\n---\n", 3, "does not match the file name 'bad.md'"),
    "jinja unclosed if": (
        "---\nname: bad\ndescription: x\n---\nHello\n{% if question %}\n{{ question }}\n",
        7,
        "template syntax error",
    ),
    "jinja empty if": (
        "---\nname: bad\ndescription: x\n---\nHello\n\n{% if %}x{% endif %}\n{{ question }}\n",
        7,
        "template syntax error",
    ),
    "jinja unclosed expression": (
        "---\nname: bad\ndescription: x\n---\n{{ question }\nmore\n",
        5,
        "template syntax error",
    ),
    "undefined variable": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n\nDear {{ usr }}, {{ usr }}\n",
        7,
        "undefined variable 'usr'",
    ),
    "undefined in condition": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n{% if verbose %}\nlong\n{% endif %}\n",
        6,
        "undefined variable 'verbose'",
    ),
    "dunder attribute": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n{{ ''.__class__.__mro__ }}\n",
        6,
        "is not allowed in a persona template",
    ),
    "dunder subscript": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n\n{{ question['__class__'] }}\n",
        7,
        "'__class__' is not allowed",
    ),
    "sandbox at render": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n{{ question|attr('__class__') }}\n",
        6,
        "fails when rendered",
    ),
    "runtime error": (
        "---\nname: bad\ndescription: x\n---\n{{ question }}\n\n\n{{ 1 // 0 }}\n",
        8,
        "ZeroDivision",
    ),
    "include": ("---\nname: bad\ndescription: x\n---\n{{ question }}\n{% include 'x.md' %}\n", 6, "include"),
}


@pytest.mark.parametrize(("text", "line", "problem"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PersonaError) as caught:
        load_persona(path)
    error = caught.value
    assert error.path == path
    assert error.line == line, str(error)
    assert problem in str(error)
    assert str(error).startswith(f"{path}:{line}: ")


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", "---\nname: bad\ndescription: x\ntemprature: 0.6\n---\n")
    with pytest.raises(PersonaError, match="did you mean 'temperature'"):
        load_persona(path)


def test_crlf_and_non_utf8(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.md"
    crlf.write_bytes(b"---\r\nname: crlf\r\ndescription: x\r\n---\r\n{{ question }}\r\n{{ nope }}\r\n")
    with pytest.raises(PersonaError) as caught:
        load_persona(crlf)
    assert caught.value.line == 6
    latin = tmp_path / "latin.md"
    latin.write_bytes(b"---\nname: latin\ndescription: caf\xe9\n---\n")
    with pytest.raises(PersonaError) as caught:
        load_persona(latin)
    assert caught.value.line == 3
    assert "UTF-8" in str(caught.value)


def test_error_format_and_pickling(tmp_path: Path) -> None:
    error = PersonaError(tmp_path / "x.md", None, "cannot read file", "check permissions")
    assert str(error) == f"{tmp_path / 'x.md'}: cannot read file (hint: check permissions)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.problem, copy.hint) == (error.path, None, error.problem, error.hint)


# --- rendering -----------------------------------------------------------------------------


def test_user_text_is_never_compiled(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, "p", persona_text("p", "Q: {{ question }}\n")))
    question = "{{ 7*7 }} {% for x in y %}{{ x }}{% endfor %} {# c #} {{ ''.__class__ }}"
    assert persona.render(question) == f"Q: {question}"


def test_question_appended_when_body_omits_it(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, "p", persona_text("p", "\n  Be brief.  \n\n")))
    assert persona.render("  {{ 7*7 }}?") == "Be brief.\n\n  {{ 7*7 }}?"
    empty = load_persona(write(tmp_path, "e", persona_text("e", "")))
    assert empty.render("hi") == "hi"


def test_context_variables(tmp_path: Path) -> None:
    body = "{% if user_name %}Hi {{ user_name }} on {{ platform }}/{{ channel }}.{% endif %} {{ today }}\n"
    persona = load_persona(write(tmp_path, "p", persona_text("p", body)))
    text = persona.render("q", user_name="Ada", platform="slack", channel="#x", today="2025-02-03")
    assert text == "Hi Ada on slack/#x. 2025-02-03\n\nq"
    assert persona.render("q").startswith("20")  # defaults: no user, today's date
    assert persona.render("q", secret="x", today="d") == "d\n\nq"  # unknown context is ignored


def test_plugin_variables(tmp_path: Path) -> None:
    path = write(tmp_path, "p", persona_text("p", "{{ question }}\n[{{ grade }}]"))
    with pytest.raises(PersonaError, match="undefined variable 'grade'"):
        load_persona(path)
    persona = load_persona(path, extra_variables={"grade"})
    assert persona.render("q", grade="7") == "q\n[7]"
    assert persona.render("q") == "q\n[]"
    registry = PersonaRegistry(tmp_path, extra_variables=["grade"])
    assert registry.load() == []
    assert check_directory(tmp_path, ["grade"])[1] == []


def test_defaults_and_hash(tmp_path: Path) -> None:
    path = write(tmp_path, "p", persona_text("p", "{{ question }}"))
    persona = load_persona(path)
    assert (persona.temperature, persona.top_p, persona.max_tokens) == (None, None, None)
    assert (persona.reasoning_display, persona.answer_format) == ("thinking", "plain")
    assert persona.access.is_open
    path.write_text(persona_text("p", "{{ question }}!"), encoding="utf-8")
    assert load_persona(path).content_hash != persona.content_hash


# --- access --------------------------------------------------------------------------------


def test_access_rules() -> None:
    assert Access().allows("u", frozenset(), "c")
    roles = Access(roles=frozenset({"legal"}))
    assert roles.allows("u", frozenset({"legal", "x"}), "c")
    assert not roles.allows("u", frozenset({"x"}), "c")
    users = Access(users=frozenset({"alice"}))
    assert users.allows("Alice", frozenset(), "c")
    assert not users.allows("bob", frozenset(), "c")
    who = Access(users=frozenset({"alice"}), roles=frozenset({"legal"}))
    assert who.allows("alice", frozenset(), "c")
    assert who.allows("bob", frozenset({"legal"}), "c")
    assert not who.allows("bob", frozenset(), "c")
    where = Access(roles=frozenset({"legal"}), channels=frozenset({"#legal-qa"}))
    assert where.allows("bob", frozenset({"legal"}), "legal-qa")
    assert not where.allows("bob", frozenset({"legal"}), "general")
    assert not where.allows("bob", frozenset(), "legal-qa")
    only_channel = Access(channels=frozenset({"C123"}))
    assert only_channel.allows("anyone", frozenset(), "C123")
    assert not only_channel.allows("anyone", frozenset(), "C999")


def test_access_from_file(tmp_path: Path) -> None:
    extra = "access:\n  users:\n  roles: [Medical]\n  channels: ['#med']\n"
    persona = load_persona(write(tmp_path, "p", persona_text("p", "{{ question }}", extra)))
    assert persona.access.users == frozenset()
    assert persona.access.allows("u", frozenset({"medical"}), "med")
    assert not persona.access.allows("u", frozenset({"medical"}), "general")
    open_persona = load_persona(write(tmp_path, "o", persona_text("o", "{{ question }}", "access:\n")))
    assert open_persona.access.is_open


# --- registry ------------------------------------------------------------------------------


def test_registry_keeps_last_good_version(tmp_path: Path) -> None:
    path = write(tmp_path, "math", persona_text("math", "v1 {{ question }}"))
    write(tmp_path, "general", persona_text("general", "{{ question }}"))
    (tmp_path / ".math.md.swp").write_text("junk", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("junk", encoding="utf-8")
    registry = PersonaRegistry(tmp_path)
    assert registry.load() == []
    assert registry.names() == ["general", "math"]
    first = registry.get("math")
    assert first is not None

    path.write_text(persona_text("math", "v2 {{ question }"), encoding="utf-8")
    errors = registry.load()
    assert [(e.path, e.line) for e in errors] == [(path, 5)]
    assert registry.errors == errors
    assert registry.get("math") is first
    assert registry.is_stale("math")

    path.write_text(persona_text("math", "v3 {{ question }}"), encoding="utf-8")
    assert registry.load() == []
    fixed = registry.get("math")
    assert fixed is not None
    assert fixed.content_hash != first.content_hash
    assert fixed.render("q") == "v3 q"
    assert not registry.is_stale("math")

    path.unlink()
    assert registry.load() == []
    assert registry.get("math") is None
    assert registry.names() == ["general"]


def test_registry_never_serves_a_file_that_was_never_good(tmp_path: Path) -> None:
    write(tmp_path, "broken", persona_text("broken", "{{ nope }}"))
    registry = PersonaRegistry(tmp_path)
    errors = registry.load()
    assert [e.line for e in errors] == [5]
    assert registry.get("broken") is None
    assert registry.all() == []


def test_registry_reload_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "math", persona_text("math", "v1 {{ question }}"))
    registry = PersonaRegistry(tmp_path)
    caplog.set_level("INFO", logger="botkit.personas")
    registry.load()
    old = registry.get("math")
    path.write_text(persona_text("math", "v2 {{ question }}"), encoding="utf-8")
    registry.load()
    new = registry.get("math")
    assert old is not None
    assert new is not None
    assert f"persona math reloaded (hash {old.content_hash} -> {new.content_hash})" in caplog.text
    path.write_text(persona_text("math", "{{ x }}"), encoding="utf-8")
    registry.load()
    assert f"{path}:5: undefined variable 'x'" in caplog.text
    assert "still serving the previous version" in caplog.text


def test_missing_directory(tmp_path: Path) -> None:
    registry = PersonaRegistry(tmp_path / "nope")
    assert [e.line for e in registry.load()] == [None]
    personas, errors = check_directory(tmp_path / "nope")
    assert personas == []
    assert "does not exist" in str(errors[0])
    assert check_directory(tmp_path)[1][0].problem.startswith("no persona files")


async def test_watch_reloads_after_edit(tmp_path: Path) -> None:
    path = write(tmp_path, "math", persona_text("math", "v0 {{ question }}"))
    registry = PersonaRegistry(tmp_path)
    assert registry.load() == []
    seen: asyncio.Queue[tuple[list[str], list[PersonaError]]] = asyncio.Queue()

    async def on_change(changed: list[str], errors: list[PersonaError]) -> None:
        await seen.put((changed, errors))

    stop = asyncio.Event()
    watcher = asyncio.create_task(registry.watch(on_change, stop_event=stop))
    try:
        # The watcher has no "ready" signal, so keep editing until an edit is noticed.
        async with asyncio.timeout(30):
            version = 0
            while True:
                version += 1
                path.write_text(persona_text("math", f"v{version} {{{{ question }}}}"), encoding="utf-8")
                try:
                    changed, errors = await asyncio.wait_for(seen.get(), timeout=3)
                except TimeoutError:
                    continue
                if "math" in changed:
                    break
            assert errors == []
            persona = registry.get("math")
            assert persona is not None
            assert persona.render("q").endswith(" q")

            # A broken edit is reported to the callback and the previous version keeps serving.
            while not seen.empty():
                seen.get_nowait()
            path.write_text(persona_text("math", "{{ broken"), encoding="utf-8")
            changed, errors = await seen.get()
            while not errors:  # skip any reload still in flight from the loop above
                changed, errors = await seen.get()
            assert [e.line for e in errors] == [5]
            assert registry.get("math") is not None
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await watcher
