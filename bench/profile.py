"""`--profile DIR`: sample the shop's processes with py-spy while each row is measured.

For every measured row of a scenario, `py-spy record --format raw` runs on each
server process (uvicorn's or granian's workers and their master) and on `tienda worker`,
for the row's duration. Each writes its collapsed stacks to
`DIR/<scenario>-c<concurrency>-<role>-<pid>.txt` (flamegraph.pl and speedscope read them),
and `summary()` turns all the files of a row into one table: the functions that took the
most samples, on their own (self) and with what they called (total), idle waits apart.

py-spy is not one of the shop's dependencies: `.venv/bin/pip install py-spy`. It stops each
process for the moment it reads a sample (root, or `ptrace_scope` 0; `--nonblocking` reads
without stopping, but then tears most stacks), and its own CPU is taken from the same cores:
a profiled row is not a figure to publish.

py-spy samples wall-clock time and counts a thread that is not waiting as busy, preempted or
not. On two cores shared by the servers, the worker, PostgreSQL, Redis, RabbitMQ and the
load, a process that wakes another (a statement sent to PostgreSQL, a response to the client)
is often preempted right after the send, and the time it waits for a core lands on the line
of the send: asyncpg's `_do_execute`, uvicorn's `transport.write`, redis-py's `writelines`.
They looked like a third of the server's time; a send of a response costs 5-8 us of CPU here,
and writing uvicorn's headers and body in one call instead of two changed nothing measured.
Read those lines as waits, and count CPU per process (`CpuWatch`) before acting on them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RATE_HZ = 100

IDLE = re.compile(
    r"\b(select|epoll_wait|poll|_run_once|run_forever|sleep|wait|_worker|accept|_recv)\b \(|resource_tracker\.py"
)
"""Leaf frames of a process waiting for work (the event loop's poll, a thread pool's wait,
uvicorn's resource tracker reading its pipe)."""


def py_spy() -> str | None:
    """py-spy on the PATH, or beside the running Python (the project's venv)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


@dataclass
class Recording:
    """py-spy processes sampling the shop during one row."""

    files: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def wait(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def record(directory: Path, label: str, roles: Iterable[tuple[str, int]], seconds: float) -> Recording:
    """Start py-spy on each (role, pid) for `seconds`; `Recording.wait()` after the load."""
    tool = py_spy()
    recording = Recording()
    directory.mkdir(parents=True, exist_ok=True)
    if tool is None:
        return recording
    for role, pid in roles:
        out = directory / f"{label}-{role}-{pid}.txt"
        command = [tool, "record", "--format", "raw", "--rate", str(RATE_HZ)]
        command += ["--duration", str(max(1, round(seconds))), "--pid", str(pid), "--output", str(out)]
        recording.procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: S603
        recording.files.append(out)
    return recording


def _stacks(files: Sequence[Path]) -> Counter[tuple[str, ...]]:
    """Collapsed stacks ("frame;frame;... count") of every file, idle ones left out."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = tuple(stack.split(";"))
            if IDLE.search(frames[-1]):
                continue
            stacks[frames] += int(count)
    return stacks


def _name(frame: str) -> str:
    """`handle (tienda/carts/api.py:42)` -> `handle (tienda/carts/api.py)`: one row per function."""
    return re.sub(r":\d+\)$", ")", frame.split("site-packages/")[-1])


def summary(files: Sequence[Path], top: int = 30) -> str:
    """The functions with the most busy samples, self and total, as a percent of busy samples."""
    stacks = _stacks(files)
    busy = sum(stacks.values())
    if not busy:
        return "no busy samples (is py-spy installed, and allowed to read the processes?)"
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for frames, count in stacks.items():
        names = [_name(f) for f in frames[1:]] or [_name(frames[0])]  # frames[0]: the thread
        own[names[-1]] += count
        for name in set(names):
            total[name] += count
    lines = [f"{busy:,} busy samples ({RATE_HZ} Hz)", "", "self%  function", "-----  --------"]
    lines += [f"{100 * n / busy:5.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total%  function", "------  --------"]
    lines += [f"{100 * n / busy:6.1f}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)
