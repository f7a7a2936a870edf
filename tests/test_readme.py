"""The README's shell examples work as written.

The examples are read from README.md itself (every inline code span and ```bash line that runs
``botkit``), and each must be claimed by a test here with :func:`runs`: a new example without a
test, or a test whose example the README dropped, fails :func:`test_every_readme_example_is_run`.
Each command runs as a user types it, through ``bash`` and the installed ``botkit`` script, in an
empty folder; a synopsis such as ``botkit chat [--thread NAME]`` runs with concrete values.

The first of the README's two commands creates a virtualenv and installs from a package index, so
:func:`test_fresh_clone_first_command` runs only with ``BOTKIT_TEST_FRESH_CLONE=1``; the second is
what ``.ci/run`` runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import pytest
from subprocesses import clean_env, free_port, wait_for_http

from botkit.store import head_revision

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BACKEND_LINE = (
    "botkit: model backend: built-in vLLM stand-in (no GPU/vLLM here): canned answers, not a real model"
)

#: README example -> the test that runs it.
EXAMPLES: dict[str, str] = {}

T = TypeVar("T", bound=Callable[..., object])


def runs(*examples: str) -> Callable[[T], T]:
    """Marks a test as the one that runs these README examples (exactly as the README writes them)."""

    def mark(test: T) -> T:
        for example in examples:
            EXAMPLES[example] = getattr(test, "__name__", repr(test))
        return test

    return mark


_RUNS_BOTKIT = re.compile(r"(?:^|[|&;]\s*)botkit(?:\s|$)")


def readme_examples() -> set[str]:
    """Every shell example in README.md that runs ``botkit``."""
    text = README.read_text()
    found = set()
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.DOTALL):
        found |= {line.strip() for line in block.splitlines() if _RUNS_BOTKIT.search(line)}
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for span in re.findall(r"`([^`]+)`", prose):
        command = " ".join(span.replace("\\|", "|").split())
        if _RUNS_BOTKIT.search(command):
            found.add(command)
    return found


def shell(
    command: str, cwd: Path, *, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` through bash, as typed, with this venv's ``botkit`` first on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=clean_env(PATH=path, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Running:
    """A long-running command (``botkit run``): stdin left open, stderr kept in a file (a pipe
    nobody reads would fill up and stall it at ``--log-level debug``)."""

    process: subprocess.Popen[str]
    stderr: IO[str]

    def stop(self) -> str:
        """SIGTERM, as a service manager stops it; returns what it wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.communicate(timeout=60)
        self.stderr.seek(0)
        return self.stderr.read()


@contextlib.contextmanager
def spawn(command: str, cwd: Path, **env: str) -> Iterator[Running]:
    """``command`` running for the ``with`` block, stopped after it (its stderr printed on failure)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=cwd, env=clean_env(PATH=path, **env),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )  # fmt: skip
        running = Running(process, stderr)
        try:
            yield running
        except BaseException:
            print(f"stderr of {command!r}:\n{running.stop()}")
            raise
        finally:
            running.stop()


def test_every_readme_example_is_run() -> None:
    found = readme_examples()
    untested = sorted(found - set(EXAMPLES))
    gone = sorted(set(EXAMPLES) - found)
    assert not untested, f"README.md examples no test here runs (add one with @runs): {untested}"
    assert not gone, f"tests here run examples README.md no longer has: {gone}"


@runs("botkit --version")
def test_version(tmp_path: Path) -> None:
    result = shell("botkit --version", tmp_path)
    assert result.returncode == 0
    assert re.fullmatch(r"botkit \d+\.\d+\.\d+\S*\n", result.stdout)


@runs("echo 'What is 2+2?' | botkit chat", "botkit chat")
def test_piped_chat(tmp_path: Path) -> None:
    result = shell("echo 'What is 2+2?' | botkit chat", tmp_path)
    assert result.returncode == 0, result.stderr
    # A math question: its LaTeX shown as text, its boxed value as the final answer (docs/math.md).
    assert "The final answer is 4." in result.stdout
    assert result.stdout.rstrip().endswith("**Final answer:** `4`")
    assert result.stderr.splitlines() == [BACKEND_LINE]


@runs("botkit chat [--thread NAME]")
def test_chat_continues_a_named_thread(tmp_path: Path) -> None:
    for question in ("What is 2+2?", "What is 17*23?"):
        result = shell(f"echo '{question}' | botkit chat --thread homework", tmp_path)
        assert result.returncode == 0, result.stderr
    assert "The final answer is 391." in result.stdout  # the README's example of what the stand-in answers
    with sqlite3.connect(tmp_path / "botkit.db") as db:
        rows = db.execute(
            "SELECT m.role, m.status FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.thread = 'homework' ORDER BY m.id"
        ).fetchall()
    assert rows == [("user", "complete"), ("assistant", "complete")] * 2


@runs("botkit run", "botkit status [--url U] [--json]", "botkit status")
def test_run_and_status(tmp_path: Path) -> None:
    """``botkit run`` with the defaults (the console adapter; /healthz on a free port), asked."""
    folder, env = tmp_path, {"BOTKIT_SERVER__PORT": str(free_port())}
    url = f"http://127.0.0.1:{env['BOTKIT_SERVER__PORT']}/healthz"
    with spawn("botkit run", folder, **env) as running:
        wait_for_http(url)
        status = shell("botkit status", folder, **env)
        as_json = shell("botkit status --json", folder, **env)
        by_url = shell(f"botkit status --url {url}", folder)  # no port from the environment
        stderr = running.stop()
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("ready: 0 waiting, up ")
    assert re.search(r"^  http://127\.0\.0\.1:\d+/v1: ready, 0/64 in flight, 0 served$", status.stdout, re.M)
    assert json.loads(as_json.stdout)["ready"] is True
    assert by_url.returncode == 0
    assert stderr.startswith(BACKEND_LINE + "\n")
    assert "alembic" not in stderr and "Traceback" not in stderr


@runs("botkit --log-level debug run")
def test_debug_logging(tmp_path: Path) -> None:
    port = str(free_port())
    with spawn("botkit --log-level debug run", tmp_path, BOTKIT_SERVER__PORT=port) as running:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        stderr = running.stop()
    assert " INFO botkit.app: model backend: built-in vLLM stand-in" in stderr
    assert " INFO alembic.runtime.migration: Running upgrade" in stderr  # other libraries' lines too,
    assert " DEBUG aiosqlite: " in stderr  # down to DEBUG


@runs("botkit personas check [DIR]")
def test_personas_check(tmp_path: Path) -> None:
    shipped = shell("botkit personas check", tmp_path)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert shipped.stdout.splitlines()[-1].startswith("4 persona(s) ok, 0 error(s) in ")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "pirate.md").write_text(
        "---\nname: pirate\ndescription: Talks like a pirate\n---\n{{ question }} Answer like a pirate.\n"
    )
    mine = shell("botkit personas check mine", tmp_path)
    assert mine.returncode == 0, mine.stdout
    assert mine.stdout.splitlines()[-1] == "1 persona(s) ok, 0 error(s) in mine"


@runs("botkit personas history NAME", "botkit personas diff NAME OLD NEW")
def test_personas_history_and_diff(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    pirate = tmp_path / "mine" / "pirate.md"
    env = {"BOTKIT_PERSONAS__DIR": "mine", "BOTKIT_PERSONAS__DEFAULT": "pirate"}
    hashes = []
    for ending in ("Answer like a pirate.", "Answer like a polite pirate."):
        pirate.write_text(
            f"---\nname: pirate\ndescription: Talks like a pirate\n---\n{{{{ question }}}} {ending}\n"
        )
        history = shell("botkit personas history pirate", tmp_path, **env)
        assert history.returncode == 0, history.stderr
        hashes.append(history.stdout.splitlines()[-1].split()[3])
    assert len(history.stdout.splitlines()) == 2 and history.stdout.rstrip().endswith("(serving)")
    diff = shell(f"botkit personas diff pirate {hashes[0][:6]} {hashes[1][:6]}", tmp_path, **env)
    assert diff.returncode == 0, diff.stderr
    assert (
        "-{{ question }} Answer like a pirate.\n+{{ question }} Answer like a polite pirate.\n" in diff.stdout
    )


@runs("botkit audit [--since 7d] [--actor ID] [--json]")
def test_audit(tmp_path: Path) -> None:
    chat = shell(
        "printf ':persona list\\n:ask persona=legal hi\\n' | botkit chat",
        tmp_path,
        BOTKIT_CONSOLE__USER="ann",
        BOTKIT_CONSOLE__OPERATOR="false",  # judged like any user, so the refusal is audited
    )
    assert chat.returncode == 0, chat.stderr
    audit = shell("botkit audit", tmp_path)
    assert audit.returncode == 0, audit.stderr
    assert re.search(r"console/\S+  ann  admin_command  command=persona list", audit.stdout)
    as_json = shell("botkit audit --since 7d --actor ann --json", tmp_path)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["action"], r["detail"].get("persona")) for r in rows] == [
        ("admin_command", None),
        ("refusal", "legal"),
    ]
    assert rows[1]["detail"]["rule"] == "users/roles"


@runs("botkit eval report [--persona P] [--since 30d] [--results FILE...] [--json]", "botkit eval report")
def test_eval_report(tmp_path: Path) -> None:
    chat = shell("printf 'What is 2+2?\\nAnd 3+3?\\n' | botkit chat", tmp_path)
    assert chat.returncode == 0, chat.stderr
    with sqlite3.connect(tmp_path / "botkit.db") as db:
        (version,) = db.execute(
            "SELECT DISTINCT persona_hash FROM messages WHERE role = 'assistant'"
        ).fetchone()
    result = {"persona": "general", "persona_version": version, "dataset": "smoke.jsonl", "runs": 3}
    (tmp_path / "eval.json").write_text(json.dumps({**result, "accuracy": {"mean": 0.75, "std": 0.1}}))
    table = shell("botkit eval report", tmp_path)
    assert table.returncode == 0, table.stderr
    # The console shows no buttons: two replies, no votes yet.
    assert table.stdout.splitlines()[2].split() == ["general", version[:12], "2", "0", "0%", "–", "–"]
    as_json = shell("botkit eval report --persona general --since 30d --results eval.json --json", tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    (row,) = json.loads(as_json.stdout)["versions"]
    assert (row["replies"], row["votes"], row["vote_rate"], row["up_share"]) == (2, 0, 0.0, None)
    assert [(o["accuracy_mean"], o["accuracy_std"], o["runs"]) for o in row["offline"]] == [(0.75, 0.1, 3)]


@runs(
    "botkit export --thread THREAD [--format json|markdown] [--output FILE]",
    "botkit export --user ID [--platform P]",
    "botkit db prune --older-than 90d [--persona P] [--channel C] [--apply]",
    "botkit db forget --user ID [--platform P] [--yes]",
)
def test_export_prune_and_forget(tmp_path: Path) -> None:
    chat = shell(
        "printf 'What is 2+2?\\nWhat is 3+3?\\n' | botkit chat", tmp_path, BOTKIT_CONSOLE__USER="ann"
    )
    assert chat.returncode == 0, chat.stderr
    exported = shell(
        "botkit export --thread console:/local/default --format markdown --output t.md", tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    markdown = (tmp_path / "t.md").read_text()
    assert "> What is 2+2?" in markdown and "\\boxed{6}" in markdown
    assert shell("botkit export --thread console:/local/nope", tmp_path).returncode == 1
    mine = json.loads(shell("botkit export --user ann --platform console", tmp_path).stdout)
    assert [t["question"] for t in mine["threads"][0]["turns"]] == ["What is 2+2?", "What is 3+3?"]
    dry = shell("botkit db prune --older-than 90d --persona math --channel console:local", tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "nothing to remove" in dry.stdout
    refused = shell("botkit db forget --user ann", tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    forgot = shell("botkit db forget --user ann --platform console --yes", tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    assert "removed 2 question(s) and 2 answer(s)" in forgot.stdout
    with sqlite3.connect(tmp_path / "botkit.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        actions = [row[0] for row in db.execute("SELECT action FROM audit WHERE platform = 'botkit'")]
    assert actions.count("export") == 2 and actions.count("forget") == 1
    assert shell("botkit db prune --older-than 0s --apply", tmp_path).returncode == 0


@runs("botkit db upgrade", "botkit db current")
def test_db_upgrade_then_current(tmp_path: Path) -> None:
    upgraded = shell("botkit db upgrade", tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stderr == ""
    head = head_revision()
    assert upgraded.stdout == f"database revision: {head} (newest: {head})\n"
    current = shell("botkit db current", tmp_path)
    assert current.stdout == f"database revision: {head} (newest: {head})\n"


@runs("botkit standin [--port N ...]")
def test_standin_answers_like_vllm(tmp_path: Path) -> None:
    port = free_port()
    with spawn(f"botkit standin --port {port} --max-model-len 4096", tmp_path):
        wait_for_http(f"http://127.0.0.1:{port}/health")
        body = json.dumps(
            {
                "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                "messages": [{"role": "user", "content": "What is 17*23?"}],
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())["choices"][0]["message"]["content"]
    assert "\\boxed{391}" in answer


@runs(
    "botkit eval math datasets/math.jsonl --limit 3 --runs 2",
    "botkit eval PERSONA DATASET [--runs 5] [--concurrency N] [--limit N] [--seed S] [--compare OTHER] "
    "[--json OUT] [--chart OUT.png]",
)
def test_eval_a_slice_of_the_math_set(tmp_path: Path) -> None:
    shutil.copytree(REPO / "datasets", tmp_path / "datasets")
    quick = shell("botkit eval math datasets/math.jsonl --limit 3 --runs 2", tmp_path)
    assert quick.returncode == 0, quick.stderr
    assert quick.stderr.startswith("botkit eval: model backend: built-in vLLM stand-in")
    assert re.search(r"│ overall +│ +6 │ 100% ± 0% │ +100% │", quick.stdout)  # the stand-in does arithmetic
    full = shell(
        "botkit eval math datasets/math.jsonl --runs 2 --concurrency 2 --limit 2 --seed 7 --compare general "
        "--json out.json --chart out.png",
        tmp_path,
    )
    assert full.returncode == 0, full.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert [s["persona"] for s in report["results"]] == ["math", "general"]
    assert report["seed"] == 7 and len(report["run_results"]) == 8
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


@runs("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && botkit chat")
@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    not os.environ.get("BOTKIT_TEST_FRESH_CLONE"),
    reason="installs botkit from a package index into a new venv (minutes); BOTKIT_TEST_FRESH_CLONE=1 runs it",
)
def test_fresh_clone_first_command(tmp_path: Path) -> None:
    clone = tmp_path / "botkit"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    command = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && botkit chat"
    result = subprocess.run(
        ["bash", "-c", command], cwd=clone, input="What is 2+2?\n", capture_output=True, text=True,
        timeout=1700, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "PYTHON", "VIRTUAL_ENV"))},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("The final answer is $\\boxed{4}$.")
    assert result.stderr.splitlines()[-1] == BACKEND_LINE


@runs("printf ':ask persona=legal Can I sublet my flat?\\n' | botkit chat")
def test_the_console_example_of_a_governed_persona_is_answered_out_of_the_box(tmp_path: Path) -> None:
    """The console user is the operator: the legal persona answers without any role set."""
    result = shell("printf ':ask persona=legal Can I sublet my flat?\\n' | botkit chat", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not available" not in result.stdout
    assert "Can I sublet my flat?" in result.stdout  # the stand-in repeats the question it got
    assert result.stdout.rstrip().endswith("consult a qualified lawyer about your situation._")
