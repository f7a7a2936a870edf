"""Asking every question N times through the bots' own prompt path, and timing each run.

Nothing here builds a prompt: the persona renders the user turn (:meth:`Persona.render`), the
context fit and the ``"\\n"`` guard are :func:`~botkit.pipeline.context.fit_history`'s, and the
model call with its recoveries (empty-answer retry with the ``<think>`` prefill, failover, cut
stream) is :class:`~botkit.pipeline.generation.Generation`'s, the class a chat turn uses. The
answer is graded on :func:`~botkit.pipeline.turns.final_text`, the text a chat user would see.

Runs are paired across personas: run ``r`` of question ``q`` gets the same sampling seed for
every persona evaluated (``--compare``), so a difference between two personas is not a
difference of luck. Each concurrent worker asks as its own user, so ``--concurrency`` is not
capped by the pool's per-user fairness limit.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botkit.config import LLMSettings
from botkit.eval.dataset import Question
from botkit.eval.grading import check_format, grade
from botkit.llm.errors import BackendError
from botkit.llm.pool import BackendPool
from botkit.personas import Persona, PersonaError
from botkit.pipeline.context import fit_history, prompt_room
from botkit.pipeline.generation import Attempt, Generation
from botkit.pipeline.turns import final_text
from botkit.plugins.api import Refusal, TurnResult


@dataclass(frozen=True)
class Subject:
    """A persona under evaluation, and how it is named in reports (``math@3f2a…``, a path)."""

    label: str
    persona: Persona


@dataclass
class RunResult:
    """One answer to one question, graded and timed (one row of the JSON's ``runs``)."""

    subject: str
    question: str
    run: int
    seed: int
    correct: bool
    compliant: bool
    boxed: bool | None
    notice: bool | None
    empty: bool  # no answer, even after the retry
    empty_retried: bool  # the first answer was empty and was asked again
    exhausted: bool  # the reasoning used all of max_tokens (finish_reason "length")
    error: str | None
    ttft: float | None  # seconds to the first token (reasoning or answer) of the attempt kept
    total: float
    completion_tokens: int | None
    tokens_per_second: float | None
    extracted: str | None
    failed: list[str] = field(default_factory=list)
    final: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Collector:
    """The :class:`~botkit.pipeline.generation.AnswerView` of an eval run: nobody watches it
    stream, so it only keeps the last status (the model is starting, queued) for the progress."""

    def __init__(self, on_status: Callable[[str | None], None] | None = None) -> None:
        self.on_status = on_status

    def add_reasoning(self, text: str) -> None:
        pass

    def add_answer(self, text: str) -> None:
        pass

    def drop_reasoning(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def set_notice(self, text: str | None) -> None:
        pass

    def set_status(self, text: str | None) -> None:
        if self.on_status is not None:
            self.on_status(text)


def seed_for(base: int, question: str, run: int) -> int:
    """The sampling seed of run ``run`` of ``question``: the same for every persona compared."""
    return zlib.crc32(f"{base}:{question}:{run}".encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class Job:
    subject: Subject
    question: Question
    run: int
    seed: int


def jobs(subjects: Sequence[Subject], questions: Sequence[Question], runs: int, base_seed: int) -> list[Job]:
    """Run 1 of every question first, then run 2...: an interrupted eval has measured the
    questions evenly; the subjects of one (question, run) are next to each other (paired)."""
    return [
        Job(subject, question, run, seed_for(base_seed, question.id, run))
        for run in range(runs)
        for question in questions
        for subject in subjects
    ]


class EvalRunner:
    def __init__(
        self,
        pool: BackendPool,
        llm: LLMSettings,
        *,
        concurrency: int = 1,
        on_result: Callable[[RunResult], None] | None = None,
        on_status: Callable[[str | None], None] | None = None,
    ) -> None:
        self.pool, self.llm = pool, llm
        self.concurrency = concurrency
        self.on_result = on_result
        self.on_status = on_status
        self.results: list[RunResult] = []  # filled as runs end, so an interrupted eval keeps them

    async def run(self, work: Sequence[Job]) -> list[RunResult]:
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in work:
            queue.put_nowait(job)

        async def worker(number: int) -> None:
            while not queue.empty():
                result = await self.ask(queue.get_nowait(), user=f"botkit-eval-{number}")
                self.results.append(result)
                if self.on_result is not None:
                    self.on_result(result)

        async with asyncio.TaskGroup() as group:
            for number in range(max(1, min(self.concurrency, len(work)))):
                group.create_task(worker(number))
        return self.results

    async def ask(self, job: Job, *, user: str) -> RunResult:
        """One run: render, fit, generate (with the chat's recoveries), grade."""
        persona, question = job.subject.persona, job.question
        generation = Generation(self.pool, self.llm, persona, user, Collector(self.on_status), seed=job.seed)
        started = time.monotonic()
        error: BackendError | Refusal | PersonaError | None = None
        user_content = ""
        try:
            # A template branch that fails only for this question is this run's error, not the eval's.
            user_content = persona.render(question.question, platform="console")
            fitted = await fit_history(
                [], user_content, room=prompt_room(self.llm), counter=self.pool.tokenizer()
            )
            attempt = await generation.run(fitted, user_content, _no_cut_hook)
        except (BackendError, Refusal, PersonaError) as err:
            error, attempt = err, generation.attempt
        ended = time.monotonic()
        return self._result(job, generation, attempt, error, user_content, started, ended)

    def _result(
        self,
        job: Job,
        generation: Generation,
        attempt: Attempt,
        error: BackendError | Refusal | PersonaError | None,
        user_content: str,
        started: float,
        ended: float,
    ) -> RunResult:
        persona, usage = job.subject.persona, generation.usage
        if error is None:
            final = final_text(TurnResult("complete", attempt.answer, attempt.reasoning), persona)
            graded = grade(job.question, attempt.answer, final)
            form = check_format(persona, user_content, attempt.answer, final)
            correct, compliant, failed = graded.correct, form.compliant, graded.failed
            extracted, boxed, notice = graded.extracted, form.boxed, form.notice
        else:
            final = error.user_message if isinstance(error, BackendError) else str(error)
            correct, compliant, failed, extracted, boxed, notice = (
                False,
                False,
                [str(error)],
                None,
                None,
                None,
            )
        kind = error.kind if isinstance(error, BackendError) else None
        first = usage.first_token_at
        writing = ended - first if first is not None else 0.0
        tokens = usage.completion_tokens
        return RunResult(
            subject=job.subject.label,
            question=job.question.id,
            run=job.run,
            seed=job.seed,
            correct=correct,
            compliant=compliant,
            boxed=boxed,
            notice=notice,
            empty=kind == "empty",
            empty_retried=generation.empty_retried,
            exhausted=kind == "length" or attempt.finish_reason == "length",
            error=None if error is None else (f"{kind}: {error}" if kind else str(error)),
            ttft=None if first is None else first - started,
            total=ended - started,
            completion_tokens=tokens,
            tokens_per_second=tokens / writing if tokens and writing > 0 else None,
            extracted=extracted,
            failed=failed,
            final=final,
        )


async def _no_cut_hook(attempt: Attempt, err: BackendError) -> None:
    """A cut stream is asked again by :class:`Generation` (``llm.retry_interrupted``); an eval
    stores nothing in between."""
