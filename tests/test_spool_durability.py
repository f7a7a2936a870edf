"""The spool's records survive a power cut: what the kernel is asked to do, in order.

A real spool write runs in a subprocess under ``strace``; the system calls it makes are read
back and their order checked: the temporary file fsynced before it is renamed over the record
(else the rename can reach the disk before the data: an empty record after a cut), then the
directory fsynced (the rename is an entry of the directory); a removal whose absence matters is
followed by a fsync of the directory too. Nothing is mocked: the order is the kernel's."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STRACE = shutil.which("strace") or "/usr/bin/strace"
ROOT = Path(__file__).resolve().parent.parent

# Skipped only off CI: under CI (CI=true, as .ci/run sets it) a missing strace fails the run,
# so a green run has really checked the order (tests/services.py does the same for PostgreSQL).
pytestmark = pytest.mark.skipif(
    not os.access(STRACE, os.X_OK) and not os.environ.get("CI"), reason="strace is not installed"
)

SCRIPT = """
import asyncio, sys
from pathlib import Path
from botkit.store.spool import SpooledWrite, WriteSpool

async def main() -> None:
    spool = WriteSpool(Path(sys.argv[1]), "sqlite+aiosqlite:///x.db")
    print("BEGIN", flush=True)
    await spool.save(SpooledWrite(7, ("slack", "T1", "C1", "1.0"), {"status": "complete", "answer": "a" * 2000}, ("a",)))
    await spool.discard(7, durable=True)

asyncio.run(main())
"""

# ``1234 openat(AT_FDCWD, "/x/y", O_RDONLY|O_DIRECTORY) = 5`` (pid first: strace -f)
CALL = re.compile(r"^(?:\[pid\s+)?\d+\]?\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")


def _events(directory: Path, tmp_path: Path, script: str = SCRIPT) -> list[tuple[str, str]]:
    """What the spool write asked of the kernel, in order: ("fsync", the path its fd was opened
    on), ("rename", the target), ("unlink", the path) for every call under ``tmp_path``."""
    trace = tmp_path / "strace.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run(
        [
            STRACE, "-f", "-qq", "-o", str(trace),
            "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,openat,unlink,unlinkat",
            sys.executable, "-c", script, str(directory),
        ],
        check=True, env=env, cwd=tmp_path, capture_output=True, timeout=60,
    )  # fmt: skip
    opened: dict[int, str] = {}
    events: list[tuple[str, str]] = []
    for line in _completed(trace.read_text().splitlines()):
        match = CALL.match(line)
        if match is None:
            continue
        name, args, result = match.group(1), match.group(2), int(match.group(3))
        paths = re.findall(r'"([^"]*)"', args)
        if name == "openat" and result >= 0 and paths:
            opened[result] = paths[0]
        elif name in ("fsync", "fdatasync") and int(args) in opened:
            events.append(("fsync", opened[int(args)]))
        elif name.startswith("rename") and len(paths) == 2:
            events.append(("rename", f"{paths[0]} -> {paths[1]}"))
        elif name.startswith("unlink") and paths:
            events.append(("unlink", paths[0]))
    return [e for e in events if e[1].startswith(str(tmp_path))]


UNFINISHED = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+\(.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+<\.\.\. \w+ resumed>(.*)$")


def _completed(lines: list[str]) -> list[str]:
    """strace -f's lines, a call another thread interrupted (``fsync(5 <unfinished ...>``, then
    ``<... fsync resumed>) = 0``) joined into one line where it completed: so a call counts in
    the order it finished (a batch's files are fsynced on several threads at once)."""
    started: dict[str, str] = {}
    out: list[str] = []
    for line in lines:
        if (unfinished := UNFINISHED.match(line)) is not None:
            started[unfinished.group(1)] = unfinished.group(2)
        elif (resumed := RESUMED.match(line)) is not None and resumed.group(1) in started:
            out.append(f"{resumed.group(1)} {started.pop(resumed.group(1))}{resumed.group(2)}")
        else:
            out.append(line)
    return out


def test_a_spooled_record_is_fsynced_then_renamed_then_its_directory_fsynced(tmp_path: Path) -> None:
    """fsync(temporary file) -> rename over the record -> fsync(directory); the directory,
    created by the first record, has its own entry fsynced in its parent first; a durable
    discard is unlink -> fsync(directory)."""
    directory = tmp_path / "botkit.db.pending"  # created by the first record
    events = _events(directory, tmp_path)
    record = next(path for kind, path in events if kind == "unlink")
    temporary = record.removesuffix(".json") + ".tmp"
    assert events == [
        ("fsync", str(tmp_path)),  # the new directory's entry
        ("fsync", temporary),  # the data, before the rename can reach the disk
        ("rename", f"{temporary} -> {record}"),
        ("fsync", str(directory)),  # the rename itself
        ("unlink", record),
        ("fsync", str(directory)),  # the removal
    ], events
    assert list(directory.iterdir()) == []


REUSE_SCRIPT = """
import asyncio, sys
from pathlib import Path
from botkit.store.spool import SpooledWrite, WriteSpool

async def main() -> None:
    spool = WriteSpool(Path(sys.argv[1]), "sqlite+aiosqlite:///x.db")
    entry = lambda turn: SpooledWrite(turn, ("slack", "T1", "C1", "1.0"), {"answer": "a" * 2000}, ("a",))
    await spool.save(entry(1))
    await asyncio.wrap_future(spool.discard_soon(1))  # landed: kept as a spare, not unlinked
    await spool.save(entry(2))  # the spare's rename is not durable yet: a new file
    await spool.save(entry(3))  # now it is (turn 2's directory fsync): the spare is reused
    print(sorted(p.name for p in Path(sys.argv[1]).iterdir()))

asyncio.run(main())
"""


def test_a_landed_records_file_is_reused_only_after_its_rename_is_durable(tmp_path: Path) -> None:
    """A record that is not needed any more (its final write landed) is renamed into a spare,
    and the next record is written into that file instead of a new one (creating an inode is
    most of a record's CPU here), with the same order as a new file: fsync(spare) -> rename over
    the record -> fsync(directory). The spare is reused only after a directory fsync followed
    its own rename: before that, a power cut could bring the old record's name back, naming the
    file the new record is being written into."""
    directory = tmp_path / "botkit.db.pending"
    events = _events(directory, tmp_path, REUSE_SCRIPT)
    renames = [path for kind, path in events if kind == "rename"]
    spare = next(r.split(" -> ")[1] for r in renames if r.endswith(".spare"))
    record = {n: next(r.split(" -> ")[1] for r in renames if r.endswith(f"-{n}.json")) for n in (1, 2, 3)}
    tmp2 = record[2].removesuffix(".json") + ".tmp"
    assert events[events.index(("rename", f"{record[1]} -> {spare}")) :] == [
        ("rename", f"{record[1]} -> {spare}"),  # turn 1's removal: a rename, not an unlink
        ("fsync", tmp2),  # turn 2 into a new file: the spare's rename is not durable yet
        ("rename", f"{tmp2} -> {record[2]}"),
        ("fsync", str(directory)),  # ... now it is
        ("fsync", spare),  # turn 3 into the spare
        ("rename", f"{spare} -> {record[3]}"),
        ("fsync", str(directory)),
    ], events
    assert sorted(p.name for p in directory.iterdir()) == sorted(Path(record[n]).name for n in (2, 3))


SPARE_AT_EXIT_SCRIPT = """
import asyncio, sys
from pathlib import Path
from botkit.store.spool import SpooledWrite, WriteSpool

async def main() -> None:
    spool = WriteSpool(Path(sys.argv[1]), "sqlite+aiosqlite:///x.db")
    for turn in (1, 2):
        await spool.save(SpooledWrite(turn, ("slack", "T1", "C1", "1.0"), {"answer": "a"}, ("a",)))
    await spool.save(SpooledWrite(3, ("slack", "T1", "C1", "1.0"), {"answer": "kept"}, ("a",)))
    for turn in (1, 2):
        await asyncio.wrap_future(spool.discard_soon(turn))  # landed: renamed into spares
    print(sorted(p.suffix for p in Path(sys.argv[1]).iterdir()))

asyncio.run(main())
"""


def test_a_process_that_exits_leaves_no_spares_only_the_records_that_still_mean_something(
    tmp_path: Path,
) -> None:
    """Spares are this process's scratch files: a clean exit removes them (a killed process's
    are swept by the next one on the host), so an admin looking at the pending-writes folder of
    a stopped bot sees only the writes that are still owed."""
    directory = tmp_path / "botkit.db.pending"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", SPARE_AT_EXIT_SCRIPT, str(directory)],
        check=True, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == "['.json', '.spare', '.spare']"  # while it ran: two spares
    left = [p.name for p in directory.iterdir()]
    assert len(left) == 1 and left[0].endswith("-3.json"), left


BURST_SCRIPT = """
import asyncio, sys
from pathlib import Path
from botkit.store.spool import SpooledWrite, WriteSpool

async def main() -> None:
    spool = WriteSpool(Path(sys.argv[1]), "sqlite+aiosqlite:///x.db")
    await spool.save(SpooledWrite(0, ("slack", "T1", "C1", "1.0"), {"answer": "first"}, ("a",)))
    entry = lambda turn: SpooledWrite(turn, ("slack", "T1", "C1", "1.0"), {"answer": "a" * 500}, ("a",))
    # Twenty turns ending at once (their final views' intents): asked for in one tick.
    await asyncio.gather(*(spool.save(entry(turn)) for turn in range(1, 21)))
    print(len(spool.entries()))

asyncio.run(main())
"""


def test_records_asked_for_together_share_one_directory_fsync_each_still_fsynced_before_its_rename(
    tmp_path: Path,
) -> None:
    """A burst of records (turns whose final views go out at once) is written as one batch:
    every record's temporary file fsynced before it is renamed over the record, every rename
    before the one directory fsync that makes them durable, and no caller told its record is on
    disk before that fsync (they are awaited together). One record after another, each with a
    directory fsync of its own, made the last of a burst of 128 intents wait 50-150 ms here."""
    directory = tmp_path / "botkit.db.pending"
    events = _events(directory, tmp_path, BURST_SCRIPT)
    burst = events[events.index(("fsync", str(directory))) + 1 :]  # after the first record's
    renamed = [path.split(" -> ") for kind, path in burst if kind == "rename"]
    assert len(renamed) == 20
    for temporary, _record in renamed:  # its data on disk before its name
        assert burst.index(("fsync", temporary)) < burst.index(("rename", f"{temporary} -> {_record}"))
    directory_syncs = [i for i, event in enumerate(burst) if event == ("fsync", str(directory))]
    assert len(directory_syncs) <= 2, burst  # one per batch: the first of the burst may go alone
    last_rename = max(i for i, (kind, _) in enumerate(burst) if kind == "rename")
    assert directory_syncs[-1] > last_rename  # every rename made durable


async def test_a_burst_of_records_is_handed_to_the_syncers_in_lanes_not_one_task_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty records asked for at once: their files are written and fsynced in at most
    ``SYNC_LANES`` lanes (the worker one of them), so the syncer pool gets at most
    ``SYNC_LANES - 1`` tasks, not one a record (19-20 before: a hand-over between threads each,
    most of a reply's remaining ``futex`` calls, docs/benchmarks.md section 4). Every record
    is still fsynced (counted at ``os.fsync``; the order is the strace tests' above) and whole."""
    from concurrent.futures import ThreadPoolExecutor

    from botkit.store import spool as spool_module
    from botkit.store.spool import SpooledWrite, WriteSpool

    tasks: list[str] = []
    submit = ThreadPoolExecutor.submit

    def counted(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        tasks.append(self._thread_name_prefix)
        return submit(self, fn, *args, **kwargs)

    fsyncs: list[int] = []
    fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        fsync(fd)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counted)
    monkeypatch.setattr(os, "fsync", counted_fsync)
    spool = WriteSpool(tmp_path / "pending", "sqlite+aiosqlite:///x.db")
    await spool.save(SpooledWrite(0, ("slack", "T1", "C1", "1.0"), {"answer": "first"}, ("a",)))
    tasks.clear()
    fsyncs.clear()

    def entry(turn: int) -> SpooledWrite:
        return SpooledWrite(turn, ("slack", "T1", "C1", "1.0"), {"answer": f"{turn}" * 500}, ("a",))

    await asyncio.gather(*(spool.save(entry(turn)) for turn in range(1, 21)))
    syncer_tasks = tasks.count("botkit-spool-sync")
    lanes = getattr(spool_module, "SYNC_LANES", 8)  # 8 syncers before the lanes
    assert 1 <= syncer_tasks <= lanes - 1, tasks  # one a record: 19-20
    assert len(fsyncs) >= 20 + 1, fsyncs  # each record's file, and the directory after the renames
    assert {e.turn: e.values["answer"] for e in spool.entries()} == {
        0: "first",
        **{turn: f"{turn}" * 500 for turn in range(1, 21)},
    }


async def test_an_unmarked_streams_record_says_which_get_buttons_and_an_older_one_none(
    tmp_path: Path,
) -> None:
    """The spool's unmarked-stream record keeps, beside the ids, those whose refused marking
    carried the final's 👍/👎 (``buttoned``: the later marking gives them), through an addition
    and a removal; a record written before that field (no ``buttoned`` key) reads as none."""
    import json

    from botkit.store.spool import WriteSpool

    spool = WriteSpool(tmp_path / "pending", "sqlite+aiosqlite:///x.db")
    key = ("slack", "T1", "C1", "1.0")
    await spool.unmarked.add(5, key, "1.1")
    await spool.unmarked.add(5, key, "1.2", buttons=True)
    ((record,),) = [spool.unmarked.all()]
    assert (record.message_ids, record.buttoned) == (("1.1", "1.2"), ("1.2",))
    await spool.unmarked.remove(5, "1.1")
    ((record,),) = [spool.unmarked.all()]
    assert (record.message_ids, record.buttoned) == (("1.2",), ("1.2",))
    (path,) = (tmp_path / "pending").glob("unmarked-*.json")
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "buttoned"}
    path.write_text(json.dumps(older))
    ((record,),) = [spool.unmarked.all()]
    assert (record.message_ids, record.buttoned) == (("1.2",), ())
