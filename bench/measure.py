"""What one measured run yields, and how CPU time is counted: a load tool's own CPU from
`wait4` (so a reader sees whether the tool or the server was saturated), a server's from
/proc over its whole process tree."""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measurement:
    """Completed requests (or flows) in `seconds`, latency percentiles, and failures."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int = 0
    error_kinds: Mapping[str, int] = field(default_factory=dict)
    tool_cpu_pct: float | None = None
    steps: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Multi-step flows: each step's latency percentiles (`p50_ms`...) and count."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    output: str
    wall_seconds: float
    cpu_seconds: float

    @property
    def cpu_pct(self) -> float:
        """100 means one core busy for the whole run."""
        return 100 * self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def run_tool(command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ToolRun:
    """Runs a load tool to completion, with its own CPU time (user + system) from wait4."""
    with tempfile.TemporaryFile() as out:
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return ToolRun(proc.returncode, text, wall, usage.ru_utime + usage.ru_stime)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, user + system CPU seconds) for every process."""
    found: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if fields is not None:
            # Fields after the name: state=0, ppid=1 ... utime=11, stime=12 (man 5 proc, minus 3).
            found[pid] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def _tree(root: int, processes: Mapping[int, tuple[str, int, float]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in processes:
            found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def process_tree(root: int) -> list[int]:
    """A process and its descendants, as they are now."""
    return _tree(root, _processes())


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def machine_busy_pct(seconds: float = 2.0) -> float:
    """How busy the machine is right now (100 = one core), measured over `seconds`."""
    before, began = _machine_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return 100 * (_machine_busy_seconds() - before) / (time.perf_counter() - began)


def tree_busy_pct(root: int, seconds: float = 1.0) -> float:
    """How busy a process and its descendants are right now (100 = one core), over `seconds`."""

    def used() -> float:
        processes = _processes()
        return sum(processes[pid][2] for pid in _tree(root, processes))

    before, began = used(), time.perf_counter()
    time.sleep(seconds)
    return 100 * (used() - before) / (time.perf_counter() - began)


class CpuWatch:
    """CPU% (100 = one core) over an interval: of the whole machine, of a server's processes
    one by one (uvicorn and granian fork their workers), and of PostgreSQL and Redis, so a
    reader sees who was saturated, and whether something else was using the machine.

    A thread samples /proc four times a second, so processes that end before the interval
    does (pgbench's PostgreSQL backends) are still counted, up to their last sample."""

    WATCHED = ("postgres", "redis-server", "beam.smp")
    """By command name: PostgreSQL's backends, Redis, and RabbitMQ's Erlang VM."""

    def __init__(
        self,
        server_root: int | None,
        *,
        worker_root: int | None = None,
        skip_root: bool = False,
        interval: float = 0.25,
    ) -> None:
        """`server_root`: the process whose tree is the server (without the root itself when
        `skip_root`: the harness, whose children are the deployment); `worker_root`: the
        `tienda worker` beside it, counted apart."""
        self.root = server_root
        self.worker_root = worker_root
        self.skip_root = skip_root
        self._began = time.perf_counter()
        self._busy = _machine_busy_seconds()
        self._first = _processes()
        self._last = dict(self._first)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._done.wait(interval):
            self._last.update(_processes())

    def stop(self) -> dict[str, Any]:
        self._done.set()
        self._thread.join()
        self._last.update(_processes())
        wall = time.perf_counter() - self._began

        def used(pid: int) -> float:
            before = self._first[pid][2] if pid in self._first else 0.0
            return 100 * (self._last[pid][2] - before) / wall

        report: dict[str, Any] = {"machine": round(100 * (_machine_busy_seconds() - self._busy) / wall, 1)}
        if self.root is not None:
            tree = [pid for pid in _tree(self.root, self._last) if not (self.skip_root and pid == self.root)]
            workers = sorted((used(pid) for pid in tree), reverse=True)
            report["server"] = round(sum(workers), 1)
            report["server_processes"] = [round(w, 1) for w in workers]
        if self.worker_root is not None:
            report["worker"] = round(sum(used(pid) for pid in _tree(self.worker_root, self._last)), 1)
        for name in self.WATCHED:
            report[name] = round(sum(used(pid) for pid, (comm, _, _) in self._last.items() if comm == name), 1)
        return report
