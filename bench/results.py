"""The report: one row per (scenario or ceiling, server, concurrency), the table printed
at the end of a run, its JSON twin under bench/results/, and `--compare` of two runs."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Measurement

MAX_PROCESSES_SHOWN = 4
KNOWN_PARTIES = ("server", "worker", "postgres", "redis-server", "beam.smp")
"""Whose CPU a row names; the machine's busy time beyond them (and the load tool) is "other"."""
NO_SERVER = "-"
"""The server column of ceilings that do not go through HTTP (pgbench, redis-benchmark)."""


HEAD = [
    "scenario", "server", "conc", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "vs ceiling",
    "load CPU%", "server CPU% (per process)", "worker CPU%", "pg CPU%", "redis CPU%", "mq CPU%", "other CPU%",
]  # fmt: skip


@dataclass
class Row:
    name: str
    server: str
    concurrency: int
    tool: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    is_ceiling: bool = False
    ceiling: str | None = None
    ratio: float | None = None
    load_cpu_pct: float | None = None
    server_cpu_pct: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    steps: dict[str, dict[str, float]] = field(default_factory=dict)
    """Multi-step flows: each step's latency percentiles."""
    cpu: dict[str, Any] = field(default_factory=dict)
    """CpuWatch's report: server, server_processes, worker, postgres, redis-server, beam.smp
    (RabbitMQ) (100 = one core)."""

    @classmethod
    def of(
        cls,
        name: str,
        server: str,
        concurrency: int,
        tool: str,
        m: Measurement,
        *,
        is_ceiling: bool = False,
        ceiling: str | None = None,
        cpu: dict[str, Any] | None = None,
    ) -> Row:
        cpu = dict(cpu or {})
        if "machine" in cpu:
            # What no known party used: another program's work makes the figures noisy.
            known = (m.tool_cpu_pct or 0) + sum(cpu.get(k, 0) for k in KNOWN_PARTIES)
            cpu["other"] = round(max(0.0, cpu["machine"] - known), 1)
        return cls(
            name=name,
            server=server,
            concurrency=concurrency,
            tool=tool,
            rps=round(m.rps, 1),
            p50_ms=round(m.p50_ms, 2),
            p95_ms=round(m.p95_ms, 2),
            p99_ms=round(m.p99_ms, 2),
            errors=m.errors,
            is_ceiling=is_ceiling,
            ceiling=ceiling,
            load_cpu_pct=None if m.tool_cpu_pct is None else round(m.tool_cpu_pct, 1),
            server_cpu_pct=cpu.get("server"),
            error_kinds=dict(m.error_kinds),
            steps={name: dict(values) for name, values in m.steps.items()},
            cpu=cpu,
        )

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.name, self.server, self.concurrency)


def attach_ratios(rows: Sequence[Row]) -> None:
    """Each scenario's rps over its ceiling's: at the same server and concurrency, else one
    without a server at that concurrency, else one without a server at any (argon2 runs
    one process per worker whatever the load's concurrency)."""
    ceilings = {row.key: row for row in rows if row.is_ceiling}
    anywhere = {row.name: row for row in rows if row.is_ceiling and row.server == NO_SERVER}
    for row in rows:
        if row.is_ceiling or row.ceiling is None:
            continue
        ref = (
            ceilings.get((row.ceiling, row.server, row.concurrency))
            or ceilings.get((row.ceiling, NO_SERVER, row.concurrency))
            or anywhere.get(row.ceiling)
        )
        row.ratio = round(row.rps / ref.rps, 3) if ref is not None and ref.rps > 0 else None


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows: Iterable[Row]) -> str:
    """A Markdown table, readable in a terminal and pasteable into the README."""
    lines = [HEAD]
    for r in rows:
        if r.is_ceiling:
            versus = "(ceiling)"
        elif r.ratio is None:
            versus = "-"
        else:
            versus = f"{r.ratio:.3f} of {r.ceiling}"
        lines.append(
            [
                ("ceiling:" if r.is_ceiling else "") + r.name,
                r.server,
                str(r.concurrency),
                _num(r.rps),
                _num(r.p50_ms, 2),
                _num(r.p95_ms, 2),
                _num(r.p99_ms, 2),
                str(r.errors),
                versus,
                _num(r.load_cpu_pct, 0) + f" {r.tool}",
                _server_cpu(r),
                _num(r.cpu.get("worker"), 0),
                _num(r.cpu.get("postgres"), 0),
                _num(r.cpu.get("redis-server"), 0),
                _num(r.cpu.get("beam.smp"), 0),
                _num(r.cpu.get("other"), 0),
            ]
        )
    return _markdown(lines)


def steps(rows: Iterable[Row]) -> str:
    """The steps of multi-step flows: each one's own latency, under the whole flow's row."""
    lines = [["flow", "server", "conc", "step", "count", "p50 ms", "p95 ms", "p99 ms"]]
    for r in rows:
        for name, v in r.steps.items():
            lines.append(
                [r.name, r.server, str(r.concurrency), name, f"{int(v.get('count', 0)):,}"]
                + [_num(v.get(k), 2) for k in ("p50_ms", "p95_ms", "p99_ms")]
            )
    return _markdown(lines) if len(lines) > 1 else ""


def save(path: Path, *, rows: Sequence[Row], meta: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    return path


def load(path: Path) -> list[Row]:
    return [Row(**raw) for raw in json.loads(path.read_text())["rows"]]


def compare(before: Sequence[Row], after: Sequence[Row]) -> str:
    """Rows present in both runs: req/s and p99 of each, and after/before ratios."""
    old = {r.key: r for r in before}
    lines = [["scenario", "server", "conc", "req/s A", "req/s B", "B/A", "p99 A", "p99 B", "B/A p99"]]
    for r in after:
        a = old.get(r.key)
        if a is None:
            continue
        lines.append(
            [
                ("ceiling:" if r.is_ceiling else "") + r.name,
                r.server,
                str(r.concurrency),
                _num(a.rps),
                _num(r.rps),
                _ratio(r.rps, a.rps),
                _num(a.p99_ms, 2),
                _num(r.p99_ms, 2),
                _ratio(r.p99_ms, a.p99_ms),
            ]
        )
    if len(lines) == 1:
        return "No scenario, server and concurrency in common between the two runs."
    return _markdown(lines)


def _server_cpu(row: Row) -> str:
    if row.server_cpu_pct is None:
        return "-"
    parts = [f"{p:.0f}" for p in row.cpu.get("server_processes", []) if p >= 0.5]
    if len(parts) > MAX_PROCESSES_SHOWN:  # the split deployment: the busiest few
        parts = [*parts[:MAX_PROCESSES_SHOWN], "..."]
    return f"{row.server_cpu_pct:.0f}" + (f" ({'+'.join(parts)})" if len(parts) > 1 else "")


def _markdown(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(text)


def _ratio(new: float, old: float) -> str:
    return f"{new / old:.3f}" if old > 0 else "-"
