"""Offline eval results as ``botkit eval report`` reads them: the JSON that ``botkit eval
PERSONA DATASET --json OUT`` writes.

A file holds one result object, a list of them, or an object with a ``results`` list. The keys
read from each result (anything else is ignored):

=====================  ==========================================================  ========
key                    what                                                        required
=====================  ==========================================================  ========
``persona``            persona name (also read: ``persona_name``)                  yes
``persona_version``    the persona's content hash, as turns store it (also read:   yes
                       ``persona_hash``); a prefix of 8+ characters matches
``dataset``            the dataset's name or path                                  no
``runs``               independent runs per question                               no
``accuracy_mean``      mean accuracy across runs, 0..1 (also read: ``accuracy``    yes
                       as ``{"mean": .., "std": ..}``, or either form inside
                       ``overall``)
``accuracy_std``       its standard deviation across runs                          no
=====================  ==========================================================  ========

A file that cannot be read, or a result without the required keys, is an error that names
the file, the result and the missing key (:class:`ResultsError`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_PREFIX = 8  # characters of a hash that identify a version


class ResultsError(ValueError):
    """An eval results file botkit cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class OfflineResult:
    persona: str
    version: str
    accuracy_mean: float
    accuracy_std: float | None
    runs: int | None
    dataset: str | None
    source: str  # the file it came from

    def matches(self, persona: str, version: str) -> bool:
        """Same persona, and the same hash (either may be a prefix of the other, 8+ characters)."""
        if persona != self.persona or not version or not self.version:
            return False
        if version == self.version:
            return True
        shorter, longer = sorted((version, self.version), key=len)
        return len(shorter) >= MIN_PREFIX and longer.startswith(shorter)

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "runs": self.runs,
            "accuracy_mean": self.accuracy_mean,
            "accuracy_std": self.accuracy_std,
            "source": self.source,
        }


def load_results(paths: Iterable[Path]) -> list[OfflineResult]:
    """Every result in the given files, in order."""
    results: list[OfflineResult] = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ResultsError(f"--results {path}: cannot read it ({err.strerror or err})") from None
        except json.JSONDecodeError as err:
            raise ResultsError(f"--results {path}: not JSON (line {err.lineno}: {err.msg})") from None
        items = data.get("results") if isinstance(data, dict) and "results" in data else data
        items = items if isinstance(items, list) else [items]
        for index, item in enumerate(items):
            where = f"--results {path}" + (f", result {index + 1}" if len(items) > 1 else "")
            results.append(_result(item, where, str(path)))
    return results


def _result(item: Any, where: str, source: str) -> OfflineResult:
    if not isinstance(item, Mapping):
        raise ResultsError(f"{where}: expected a JSON object, got {type(item).__name__}")
    persona = _first(item, "persona", "persona_name")
    version = _first(item, "persona_version", "persona_hash")
    if not isinstance(persona, str) or not persona:
        raise ResultsError(f"{where}: no persona name (key 'persona' or 'persona_name')")
    if not isinstance(version, str) or not version:
        raise ResultsError(
            f"{where}: no persona version (key 'persona_version' or 'persona_hash': the persona's "
            "content hash, as `botkit personas history` lists it)"
        )
    mean, std = _accuracy(item)
    if mean is None:
        mean, std = _accuracy(item.get("overall") or {})
    if mean is None:
        raise ResultsError(
            f"{where}: no accuracy (key 'accuracy_mean', or 'accuracy': {{\"mean\": .., \"std\": ..}}, "
            "at the top level or inside 'overall')"
        )
    runs = item.get("runs")
    dataset = item.get("dataset")
    return OfflineResult(
        persona,
        version,
        mean,
        std,
        int(runs) if isinstance(runs, int | float) and not isinstance(runs, bool) else None,
        str(dataset) if dataset is not None else None,
        source,
    )


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    return next((item[k] for k in keys if item.get(k) is not None), None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _accuracy(item: Any) -> tuple[float | None, float | None]:
    if not isinstance(item, Mapping):
        return None, None
    nested = item.get("accuracy")
    if isinstance(nested, Mapping):
        return _number(nested.get("mean")), _number(nested.get("std"))
    mean = _number(item.get("accuracy_mean"))
    if mean is None:
        mean = _number(nested)
    return mean, _number(item.get("accuracy_std"))
