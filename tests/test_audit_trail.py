"""The Audit screen's plain parts: the per-node trail (incremental fetch), the filter line, the JSON-lines
export, and ``fleetdeck audit --jsonl`` / ``snapshot --screen audit`` on the command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from backends.errors import NotFound
from backends.model import AuditEntry, LogRecord, NodeInfo, NodeSnapshot, from_json
from console.core.audit_export import audit_line, audit_lines, default_export_path, write_audit_jsonl
from console.core.audit_trail import AUDIT_REFRESH_S, AuditTrail
from widgets.audit_table import AuditFilter

from .conftest import T0
from .fake_backend import FakeBackend

SEEDED_PER_NODE = 9  # the demo node's seeded history


def _entry(seq: int, ts: float, **fields: Any) -> AuditEntry:
    base: dict[str, Any] = {"operator": "alice", "action": "pause", "outcome": "ok"}
    base.update(fields)
    return AuditEntry(seq=seq, ts=ts, **base)


class ScriptedAudit(Backend):
    """Answers each audit() call with the next scripted batch; ``gate`` holds a call open until set."""

    name = "scripted"
    capabilities = frozenset({"audit"})

    def __init__(self, batches: list[list[AuditEntry]], gate: asyncio.Event | None = None) -> None:
        self.batches = batches
        self.gate = gate
        self.calls: list[int] = []

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(id="scripted-01", name="scripted-01", backend=self.name)

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(node=self.info, observed_at=T0)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        return
        yield  # pragma: no cover - makes this an async generator

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        self.calls.append(since_seq)
        if self.gate is not None:
            await self.gate.wait()
            self.gate = None
        return self.batches.pop(0) if self.batches else []


async def test_trail_fetches_incrementally_and_drops_repeats() -> None:
    backend = ScriptedAudit([[_entry(2, T0), _entry(1, T0)], [_entry(2, T0), _entry(3, T0 + 1)], []])
    trail = AuditTrail()
    assert await trail.fetch(backend, timeout=1, clock=lambda: T0) == 2
    assert await trail.fetch(backend, timeout=1, clock=lambda: T0) == 1
    assert await trail.fetch(backend, timeout=1, clock=lambda: T0) == 0
    assert backend.calls == [0, 2, 3]
    assert [e.seq for e in trail.entries] == [1, 2, 3]
    assert trail.age(T0 + 1).kind == "live"
    assert trail.age(T0 + 10 * AUDIT_REFRESH_S).kind == "stale"


async def test_a_fetch_asked_for_while_one_runs_asks_again_afterwards() -> None:
    # an action's entry written while a periodic fetch is in flight must not wait for the next refresh
    gate = asyncio.Event()
    backend = ScriptedAudit([[_entry(1, T0)], [_entry(2, T0 + 1)]], gate=gate)
    trail = AuditTrail()
    first = asyncio.ensure_future(trail.fetch(backend, timeout=5, clock=lambda: T0))
    await asyncio.sleep(0)
    assert trail.fetching
    assert await trail.fetch(backend, timeout=5, clock=lambda: T0) == 0  # no second, racing request
    gate.set()
    assert await first == 2
    assert backend.calls == [0, 1]
    assert [e.seq for e in trail.entries] == [1, 2] and not trail.fetching


async def test_a_failed_fetch_keeps_what_was_fetched_and_says_why() -> None:
    class Failing(ScriptedAudit):
        async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
            raise NotFound("no audit store at /var/lib/fleetdeck")

    trail = AuditTrail()
    await trail.fetch(ScriptedAudit([[_entry(1, T0)]]), timeout=1, clock=lambda: T0)
    assert await trail.fetch(Failing([]), timeout=1, clock=lambda: T0 + 1) == 0
    assert [e.seq for e in trail.entries] == [1]
    assert trail.error == "no audit store at /var/lib/fleetdeck"
    assert trail.age(T0 + 1).text == "error: no audit store at /var/lib/fleetdeck"
    assert trail.attempted_at == T0 + 1 and trail.fetched_at == T0


async def test_trail_without_the_capability_never_calls_the_backend() -> None:
    trail = AuditTrail()
    backend = FakeBackend()
    assert await trail.fetch(backend, timeout=1, clock=lambda: T0) == 0
    assert trail.unsupported and "fake" in trail.unsupported
    assert trail.age(T0).kind == "unsupported"


def test_filter_line_round_trips_and_keeps_unknown_tokens_as_words() -> None:
    line = "operator:alice action:pause outcome:FAILED node:gpu-01 oom agent:coder-01"
    parsed = AuditFilter.parse(line)
    fields = (parsed.operator, parsed.action, parsed.outcome, parsed.node)
    assert fields == ("alice", "pause", "failed", "gpu-01")
    assert parsed.text == "oom agent:coder-01"
    assert AuditFilter.parse(parsed.query()) == parsed
    assert AuditFilter.parse("outcome:maybe").text == "outcome:maybe"  # not silently dropped
    entry = _entry(1, T0, target="agent:coder-01", detail="oom killed", outcome="failed")
    assert parsed.matches("gpu-01", entry)
    assert not parsed.matches("gpu-02", entry)
    assert not parsed.matches("gpu-01", _entry(1, T0, target="agent:coder-01", detail="oom", operator="bob"))


def test_export_lines_decode_back_with_their_node(tmp_path: Path) -> None:
    rows = [("b", _entry(2, T0 + 5, params={"x": 1})), ("a", _entry(1, T0, reason="why"))]
    line = audit_line("a", rows[1][1])
    assert line.startswith(b'{"node":"a","seq":1,')
    assert from_json(line, AuditEntry) == rows[1][1]
    assert [json.loads(x)["node"] for x in audit_lines(rows)] == ["a", "b"]  # oldest first
    path = default_export_path(T0, tmp_path)
    assert path == tmp_path / "fleetdeck-audit-20260101-000000.jsonl"
    first = write_audit_jsonl(path, rows)
    second = write_audit_jsonl(path, rows[:1])  # same second: never overwrite the first export
    assert first == path and second == tmp_path / "fleetdeck-audit-20260101-000000-2.jsonl"
    assert len(first.read_bytes().splitlines()) == 2
    assert len(second.read_bytes().splitlines()) == 1
    with pytest.raises(OSError):
        write_audit_jsonl(tmp_path / "missing" / "x.jsonl", rows)


def test_cli_audit_jsonl_writes_the_export_format(fleetdeck) -> None:
    result = fleetdeck("audit", "--demo", "--jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == SEEDED_PER_NODE
    assert {json.loads(line)["node"] for line in lines} == {"gpu-prod-01"}
    assert [from_json(line, AuditEntry).seq for line in lines] == list(range(1, SEEDED_PER_NODE + 1))


def test_cli_snapshot_renders_the_audit_screen(fleetdeck, tmp_path: Path) -> None:
    out = tmp_path / "audit.txt"
    result = fleetdeck(
        "snapshot", "--demo", "--screen", "audit", "--size", "80x24", "--at", str(T0), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "Audit · 27 entries" in text and "23:59:00" in text and "✔ ok" in text
