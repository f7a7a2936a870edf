"""CPU per Slack edit spent converting the reply to mrkdwn (``to_mrkdwn``), for a growing reply.

A streaming reply is converted whole on every ``chat.update``; this converts 11 growing prefixes
of two answers (the end-to-end benchmark's stand-in answer, plain prose on one long line, and a
Markdown answer of headings, bold, code, links and a list) and reports µs per edit, for this
tree and for each ``--compare LABEL=DIR`` tree (e.g. ``git archive main | tar -x -C DIR``).

    python benchmarks/bench_mrkdwn.py --compare before=/tmp/base
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import timeit
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
EDITS = 11  # about one per second of a 500-token reply at 40 tokens/s


def _load(label: str, tree: Path) -> ModuleType:
    path = tree / "adapters" / "botkit_slack" / "mrkdwn.py"
    spec = importlib.util.spec_from_file_location(f"mrkdwn_{label}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answers() -> dict[str, str]:
    question = "Q1 please summarise: " + " ".join(f"w{(1 + i) % 97}" for i in range(230))
    standin = f'You asked: "{question}"\n\nThis is a deterministic reply from the botkit vLLM stand-in.'
    markdown = "\n".join(
        [
            "## Heading",
            "Some **bold** text and `code` with a [link](https://example.com) here.",
            "Plain prose line of the answer, with nothing special in it at all.",
        ]
        * 14
        + ["- item one with *it*"] * 10
    )
    return {"stand-in answer": standin, "markdown answer": markdown}


def per_edit_us(module: ModuleType, text: str, repeat: int) -> float:
    step = max(1, len(text) // EDITS)
    prefixes = [text[:end] for end in range(step, len(text) + 1, step)]
    seconds = timeit.timeit(lambda: [module.to_mrkdwn(p) for p in prefixes], number=repeat)
    return seconds / repeat / len(prefixes) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--repeat", type=int, default=50)
    ns = parser.parse_args(argv)
    trees = [(label, Path(path)) for label, _, path in (c.partition("=") for c in ns.compare)]
    modules = [(label, _load(label, tree)) for label, tree in trees] + [("this", _load("this", REPO))]
    print(f"| text | chars | {' | '.join(f'{label} µs/edit' for label, _ in modules)} |")
    print(f"|---|---|{'---|' * len(modules)}")
    for name, text in answers().items():
        cells = " | ".join(f"{per_edit_us(module, text, ns.repeat):.1f}" for _, module in modules)
        print(f"| {name} | {len(text):,} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
