"""Where a reply's CPU goes, by stage: py-spy raw stacks (``bench_e2e.py --profile DIR
--profile-gil`` writes ``flame-*.txt``) folded into the stages of one reply.

Each sample goes to the first stage in :data:`STAGES` that one of its frames matches (so a
listener's ``store.accept`` is the accept, not bolt's dispatch around it). With ``--cpu-ms`` (the
run's botkit CPU per reply from ``/proc``, in the benchmark's JSON: ``botkit_cpu / streams``) the
shares are also given as milliseconds of that CPU: py-spy's sample counts are GIL-held *time*
and miss or add samples on a loaded machine, so they are read as shares only. What py-spy cannot
see is spread over the shares that way: kernel work done while the GIL is released (the spool's
``fsync``/``rename``, socket I/O), which ``/proc`` counts in botkit's CPU. Samples whose stack has no Python caller (callbacks from uvloop's C code: aiohttp reading a
response, the loop itself) cannot be given to a reply's stage and are listed as such::

    python benchmarks/profile_stages.py DIR/flame-this-off-100x8.txt --cpu-ms 4.6
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

#: (stage, pattern on a frame); the first stage with a matching frame takes the sample.
STAGES: tuple[tuple[str, str], ...] = (
    ("spool (Python side)", r"botkit/store/spool\.py"),
    ("accept (store.accept, before the ack)", r"ConversationStore\.accept|_add_turn_rows"),
    ("model request's open", r"LLMClient\._open"),
    ("context fit (prompt, token bound)", r"fit_history|count_tokens|TurnRunner\._fit|prompt_room"),
    (
        "the stream (client, SSE, reasoning split, streamer input)",
        r"botkit/llm/(client|sse|reasoning)\.py|consume \(botkit/pipeline/generation"
        r"|ReplyStreamer\.(add_answer|add_reasoning)",
    ),
    ("placeholder chat.postMessage", r"post_first|post_placeholder|SlackReply\._post|_record_placeholder"),
    (
        "final chat.update (view, intent, call)",
        r"ReplyStreamer\.(finish|_land|_show|_apply|_locked_apply|_add_buttons|_owe_final|_tell)"
        r"|edit_with_feedback|SlackReply\._(edit|update)|RetryPolicy",
    ),
    ("final write", r"FinalWrites|TurnRecorder\.finish|_update_assistant|_show_and_store"),
    ("adopt, streaming mark, placeholder id", r"TurnRecorder|adopt|Checkpoints"),
    ("store machinery (write group, sessions, aiosqlite thread)", r"botkit/store/|sqlalchemy|aiosqlite"),
    (
        "router and turn set-up (routing, persona, math, access)",
        r"botkit/pipeline/|botkit/mathtext|botkit/personas|botkit/llm/prompt|botkit/access",
    ),
    (
        "Socket Mode receive, bolt dispatch, listener, ack",
        r"slack_bolt|slack_sdk/socket_mode|botkit_slack/(adapter|events|commands)|ClientWebSocketResponse"
        r"|WebSocketReader|aiohttp/_websocket|aiohttp/client_ws",
    ),
    ("Slack Web API (no caller seen)", r"slack_sdk/web"),
    ("aiohttp callbacks (no caller seen: a response's bytes)", r"aiohttp/|aiohappyeyeballs"),
    ("json (no caller seen)", r"json/"),
)
_COMPILED = [(stage, re.compile(pattern)) for stage, pattern in STAGES]
LOOP = "event loop and unattributed (uvloop's C code, empty stacks)"


def stage_of(frames: list[str]) -> str:
    for stage, pattern in _COMPILED:
        if any(pattern.search(frame) for frame in frames):
            return stage
    return "other threads" if frames and frames[0].startswith("Thread._bootstrap") else LOOP


def fold(path: Path) -> tuple[collections.Counter[str], int]:
    """Samples per stage in one raw-stacks file (``frame;frame;... count`` per line)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        counts[stage_of([f for f in stack.split(";") if f])] += samples
        total += samples
    return counts, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stacks", nargs="+", type=Path)
    parser.add_argument("--cpu-ms", type=float, nargs="*", help="botkit CPU ms per reply of each file's run")
    ns = parser.parse_args()
    folded = [fold(p) for p in ns.stacks]
    order = [s for s, _ in STAGES] + [LOOP, "other threads"]
    head = " | ".join(f"{p.name} ({t} samples)" for p, (_, t) in zip(ns.stacks, folded, strict=True))
    print(f"| stage | {head} |")
    print("|---" * (len(folded) + 1) + "|")
    for stage in order:
        cells = []
        for i, (counts, total) in enumerate(folded):
            share = 100 * counts[stage] / total if total else 0.0
            cell = f"{share:.1f} %"
            if ns.cpu_ms:
                cell += f" ({share / 100 * ns.cpu_ms[i]:.2f} ms)"
            cells.append(cell)
        print(f"| {stage} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
