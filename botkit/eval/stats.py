"""The numbers an eval reports, from its runs (§2.4 of the model's usage notes: the mean and
standard deviation of accuracy over 3-5 runs, format compliance, response time).

Accuracy's spread is across *runs*: each run is one full pass over the questions, its accuracy
one number, and the standard deviation (``ddof=1``, the sample's) of those numbers is how much a
single pass can be trusted. Latencies are percentiles over every run of every question.
``--compare`` differs per question (accuracy over that question's runs, paired by seed) and its
95 % interval is a bootstrap over questions: the questions are the sample an admin chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from botkit.eval.runner import RunResult

BOOTSTRAP_RESAMPLES = 10_000


Scope = Literal["question", "tag", "overall"]


@dataclass(frozen=True)
class Summary:
    """The numbers of one question, of the questions with one tag, or of all (``scope``)."""

    scope: Scope
    name: str  # the question's id, the tag, or "overall"
    runs: int
    accuracy_mean: float
    accuracy_std: float
    compliance: float
    empty_rate: float
    exhausted_rate: float
    errors: int
    ttft_p50: float | None
    ttft_p95: float | None
    total_p50: float
    total_p95: float
    tokens_per_second: float | None  # median over runs

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(results: Sequence[RunResult], scope: Scope = "overall", name: str = "overall") -> Summary:
    """Of several questions (``overall``, a ``tag``) accuracy's std is across passes: each run's
    accuracy over those questions; of one question, across its runs' right (1) or wrong (0)."""
    if scope != "question":
        by_run: dict[int, list[bool]] = {}
        for r in results:
            by_run.setdefault(r.run, []).append(r.correct)
        per_pass = [float(np.mean(v)) for _, v in sorted(by_run.items())]
    else:
        per_pass = [float(r.correct) for r in results]
    ttfts = [r.ttft for r in results if r.ttft is not None]
    totals = [r.total for r in results]
    rates = [r.tokens_per_second for r in results if r.tokens_per_second is not None]
    n = len(results)
    return Summary(
        scope=scope,
        name=name,
        runs=n,
        accuracy_mean=float(np.mean([r.correct for r in results])) if n else 0.0,
        accuracy_std=_std(per_pass),
        compliance=sum(r.compliant for r in results) / n if n else 0.0,
        empty_rate=sum(r.empty for r in results) / n if n else 0.0,
        exhausted_rate=sum(r.exhausted for r in results) / n if n else 0.0,
        errors=sum(r.error is not None for r in results),
        ttft_p50=_percentile(ttfts, 50),
        ttft_p95=_percentile(ttfts, 95),
        total_p50=_percentile(totals, 50) or 0.0,
        total_p95=_percentile(totals, 95) or 0.0,
        tokens_per_second=float(np.median(rates)) if rates else None,
    )


def per_question(results: Sequence[RunResult], order: Sequence[str]) -> list[Summary]:
    """One summary per question that has runs, in dataset order."""
    grouped: dict[str, list[RunResult]] = {}
    for r in results:
        grouped.setdefault(r.question, []).append(r)
    return [summarize(grouped[q], "question", q) for q in order if q in grouped]


def per_tag(results: Sequence[RunResult], tags: dict[str, list[str]]) -> list[Summary]:
    """One summary per tag (``tags``: question id -> its tags) that has runs, by first use."""
    grouped: dict[str, list[RunResult]] = {}
    for tag in dict.fromkeys(t for ts in tags.values() for t in ts):
        grouped[tag] = [r for r in results if tag in tags.get(r.question, [])]
    return [summarize(rows, "tag", tag) for tag, rows in grouped.items() if rows]


@dataclass(frozen=True)
class Comparison:
    """``subject`` minus ``other``, in accuracy, over the questions both have runs of."""

    subject: str
    other: str
    questions: int
    difference: float
    ci_low: float
    ci_high: float

    @property
    def distinguishable(self) -> bool:
        """The 95 % interval leaves out zero: the difference is more than the noise of sampling."""
        return self.ci_low > 0 or self.ci_high < 0

    def verdict(self) -> str:
        pts = f"{self.difference * 100:+.1f} points (95 % CI {self.ci_low * 100:+.1f} to {self.ci_high * 100:+.1f})"
        if self.questions < 2:
            return f"{self.subject} vs {self.other}: {pts}; too few questions to tell anything from noise."
        if self.ci_low == self.ci_high == 0:
            return f"{self.subject} vs {self.other}: {pts}; the same result on every question, no difference measured."
        if not self.distinguishable:
            return (
                f"{self.subject} vs {self.other}: {pts}; NOT distinguishable from noise "
                f"(the interval contains 0): more questions or runs are needed to tell them apart."
            )
        better = self.subject if self.difference > 0 else self.other
        return f"{self.subject} vs {self.other}: {pts}; {better} is better beyond noise."

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "distinguishable": self.distinguishable, "verdict": self.verdict()}


def compare(results: Sequence[RunResult], subject: str, other: str, *, seed: int = 0) -> Comparison:
    """Paired by question (each question's accuracy over its runs; the runs share seeds), with
    a percentile bootstrap over questions."""
    accuracy: dict[tuple[str, str], list[bool]] = {}
    for r in results:
        accuracy.setdefault((r.subject, r.question), []).append(r.correct)
    questions = sorted({q for s, q in accuracy if s == subject} & {q for s, q in accuracy if s == other})
    diffs = np.array(
        [np.mean(accuracy[(subject, q)]) - np.mean(accuracy[(other, q)]) for q in questions], dtype=float
    )
    if not len(diffs):
        return Comparison(subject, other, 0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    samples = rng.choice(diffs, size=(BOOTSTRAP_RESAMPLES, len(diffs)), replace=True).mean(axis=1)
    low, high = np.percentile(samples, [2.5, 97.5])
    return Comparison(subject, other, len(diffs), float(diffs.mean()), float(low), float(high))
