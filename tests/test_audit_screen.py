"""The Audit screen (`a`) on the frozen demo fleet and on live links: order, refresh after an action, the
filter and its quick keys, the entry detail, JSON-lines export, and nodes whose trail fails or is missing.

The frozen demo fleet (seed 7, three nodes at 2026-01-01 00:00 UTC) has the same nine seeded entries on each
node (alice, bob, carol and the automatic "fleetdeck" operator; dispatch, stop, checkpoint; all "ok").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from backends.errors import NotFound
from backends.model import AuditEntry, LogRecord, NodeInfo, NodeSnapshot, Target, from_json
from console.app import FleetDeckApp, binding_contexts
from console.core.audit_trail import AUDIT_REFRESH_S
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.core.node_link import NodeLink
from console.screens.audit import AuditScreen
from console.screens.audit_detail import AuditDetailScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.snapshot import screen_text
from widgets.audit_table import AuditTable

from .conftest import T0
from .fake_backend import FakeBackend

SMALL = (80, 24)
WIDE = (160, 48)
SEEDED_PER_NODE = 9


def _status(app: FleetDeckApp) -> str:
    return str(app.screen.query_one("#audit-status").render())


def _table(app: FleetDeckApp) -> AuditTable:
    return app.screen.query_one(AuditTable)


def _entry(seq: int, ts: float, **fields: Any) -> AuditEntry:
    base: dict[str, Any] = {"operator": "alice", "action": "pause", "outcome": "ok"}
    base.update(fields)
    return AuditEntry(seq=seq, ts=ts, **base)


# --- the screen ------------------------------------------------------------------------------------------


async def test_a_opens_every_nodes_trail_newest_first(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AuditScreen)
        rows = _table(app).visible_entries()
        assert len(rows) == 3 * SEEDED_PER_NODE
        assert {node for node, _ in rows} == set(app.links)
        stamps = [entry.ts for _, entry in rows]
        assert stamps == sorted(stamps, reverse=True)
        assert stamps[0] > stamps[-1]
        text = screen_text(app)
        assert "Node" in text and "23:59:00" in text and "1m ago" in text  # bob's review, 60 s before T0
        assert "✔ ok" in text
        assert "all 3 nodes live" in text  # the panel's data age
        assert f"{3 * SEEDED_PER_NODE} entries" in _status(app)


async def test_a_never_stacks_a_second_audit_screen(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="audit")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, AuditScreen)
        depth = len(app.screen_stack)
        await pilot.press("a")
        await pilot.pause()
        assert len(app.screen_stack) == depth
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("a")  # from Help on top of it: back to the one Audit screen
        await pilot.pause()
        assert isinstance(app.screen, AuditScreen)
        assert len(app.screen_stack) == depth
        assert sum(isinstance(s, AuditScreen) for s in app.screen_stack) == 1


async def test_an_action_shows_after_refresh_audit_with_who_why_and_outcome(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="audit")
    link = app.links["gpu-stage-02"]
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        before = _table(app).shown_count
        await link.backend.pause(Target.parse("agent:coder-01"), operator="alice", reason="test")
        with pytest.raises(NotFound):
            await link.backend.pause(Target.parse("agent:no-such-agent"), operator="dave", reason="typo")
        assert _table(app).shown_count == before  # nothing fetched behind the screen's back

        worker = app.refresh_audit()
        assert worker is not None
        await worker.wait()
        await pilot.pause()

        rows = _table(app).visible_entries()
        assert len(rows) == before + 2
        fresh = {entry.operator: (node, entry) for node, entry in rows[:2]}
        node, paused = fresh["alice"]
        assert node == "gpu-stage-02"
        assert (paused.action, paused.target, paused.reason, paused.outcome) == (
            "pause",
            "agent:coder-01",
            "test",
            "ok",
        )
        assert fresh["dave"][1].outcome == "failed"
        text = screen_text(app)
        assert "✖ failed" in text and "typo" in text and "agent:coder-01" in text
        # incremental: the node's cursor moved past the new entries, nothing was fetched twice
        assert link.audit.last_seq == SEEDED_PER_NODE + 2
        assert len(link.audit.entries) == SEEDED_PER_NODE + 2


async def test_refresh_audit_without_an_audit_screen_does_nothing(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.refresh_audit() is None
        assert isinstance(app.screen, FleetScreen)


async def test_filter_by_operator_and_action_narrows(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="audit")
    link = app.links["cpu-dev-03"]
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        await link.backend.pause(Target.parse("agent:coder-01"), operator="alice", reason="test")
        worker = app.refresh_audit()
        assert worker is not None
        await worker.wait()
        await pilot.press("slash")
        await pilot.press(*"operator:alice")
        await pilot.pause()
        shown = _table(app).visible_entries()
        everything = [(lk.name, e) for lk in app.links.values() for e in lk.audit.entries]
        assert shown and all(e.operator == "alice" for _, e in shown)
        assert len(shown) == sum(e.operator == "alice" for _, e in everything)
        assert len(shown) < len(everything)

        await pilot.press(*" action:pause", "enter")
        await pilot.pause()
        shown = _table(app).visible_entries()
        assert [(n, e.action, e.reason) for n, e in shown] == [("cpu-dev-03", "pause", "test")]
        assert "1 of" in _status(app) and "operator alice" in _status(app)

        await pilot.press("x")
        await pilot.pause()
        assert _table(app).shown_count == len(everything)


async def test_quick_keys_cycle_operator_outcome_and_node(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="audit")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        seen: list[str | None] = []
        for _ in range(5):  # alice, bob, carol, fleetdeck, then all again
            await pilot.press("o")
            await pilot.pause()
            table = _table(app)
            seen.append(table.filter.operator)
            if table.filter.operator is not None:
                assert {e.operator for _, e in table.visible_entries()} == {table.filter.operator}
        assert seen == ["alice", "bob", "carol", "fleetdeck", None]

        await pilot.press("n")
        await pilot.pause()
        assert {n for n, _ in _table(app).visible_entries()} == {"gpu-prod-01"}
        # the filter line follows the quick keys, so `/` shows what is in force
        assert app.screen.query_one("#audit-filter").value == "node:gpu-prod-01"

        await pilot.press("u")  # failed first: there are none in the seeded history
        await pilot.pause()
        assert _table(app).filter.outcome == "failed"
        assert _table(app).shown_count == 0
        assert "0 of 27 entries" in _status(app)


async def test_enter_shows_the_whole_entry_and_esc_closes(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="audit")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"outcome:ok r42", "enter")  # a word found only in the params
        await pilot.pause()
        node, entry = _table(app).visible_entries()[0]
        assert entry.params["payload"]["revision"] == "r42"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AuditDetailScreen)
        text = screen_text(app)
        assert f"{node} #{entry.seq}" in text
        assert '"revision": "r42"' in text and "carol" in text
        assert "2025-12-31 22:00:00 UTC" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AuditScreen)


async def test_e_exports_exactly_the_filtered_entries(
    frozen_demo_app_async, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = await frozen_demo_app_async(screen="audit")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"operator:carol", "enter", "e")
        await pilot.pause()
        shown = _table(app).visible_entries()
        files = list(tmp_path.glob("fleetdeck-audit-*.jsonl"))
        assert [f.name for f in files] == ["fleetdeck-audit-20260101-000000.jsonl"]
        lines = files[0].read_bytes().splitlines()
        assert len(lines) == len(shown) == 6
        exported = [(json.loads(line)["node"], from_json(line, AuditEntry)) for line in lines]
        assert sorted(exported, key=repr) == sorted(shown, key=repr)
        assert [e.ts for _, e in exported] == sorted(e.ts for _, e in exported)  # oldest first
        messages = [str(n.message) for n in app._notifications]
        assert f"6 entries written to {files[0]}" in messages


async def test_export_failure_is_a_notification_not_a_crash(
    frozen_demo_app_async, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "gone" / "audit.jsonl"
    monkeypatch.setattr("console.screens.audit.default_export_path", lambda now: missing)
    app = await frozen_demo_app_async(screen="audit")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, AuditScreen)
        messages = [str(n.message) for n in app._notifications]
        assert any("could not write" in m and "No such file or directory" in m for m in messages), messages
        assert not missing.exists()


def test_audit_keys_are_in_help_and_do_not_clash() -> None:
    contexts = binding_contexts()
    assert "audit" in contexts
    assert any(getattr(b, "id", None) == "audit" for b in contexts["global"])
    keys = [k for b in contexts["audit"] for k in getattr(b, "key", "").split(",")]
    globals_ = {k for b in contexts["global"] for k in getattr(b, "key", "").split(",")}
    assert len(keys) == len(set(keys))
    assert not set(keys) & globals_


# --- nodes whose trail fails or is missing -----------------------------------------------------------------


class FailingAuditBackend(Backend):
    """A node that answers snapshots but whose audit store fails until told otherwise."""

    name = "flaky"
    capabilities = frozenset({"audit"})

    def __init__(self) -> None:
        self.failing = True
        self.calls: list[int] = []

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(id="flaky-01", name="flaky-01", backend=self.name)

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(node=self.info, observed_at=T0)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        return
        yield  # pragma: no cover - makes this an async generator

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        self.calls.append(since_seq)
        if self.failing:
            raise RuntimeError("audit store locked")
        return [_entry(1, T0 - 30, operator="erin", action="stop", target="agent:a-1")]


class ManualClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_a_failing_or_missing_trail_is_said_and_the_rest_still_show() -> None:
    clock = ManualClock(T0)
    flaky = FailingAuditBackend()
    links = [
        *demo_links(seed=7, nodes=1, agents=10, clock=clock),
        NodeLink("flaky-01", flaky, clock=clock),
        NodeLink("fake-01", FakeBackend(), clock=clock),
    ]
    app = FleetDeckApp(links, config=Config(refresh_s=0.1), clock=clock, frozen=False, start_screen="audit")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.5)
        assert isinstance(app.screen, AuditScreen) and app.is_running
        status = _status(app)
        assert "flaky-01: audit error: RuntimeError: audit store locked" in status
        assert "fake-01: no audit trail" in status
        assert {n for n, _ in _table(app).visible_entries()} == {links[0].name}
        assert _table(app).shown_count == SEEDED_PER_NODE
        tries = len(flaky.calls)
        assert tries >= 1

        await pilot.pause(0.5)  # retries are paced by AUDIT_REFRESH_S, not by every poll
        assert len(flaky.calls) == tries

        flaky.failing = False
        clock.t += AUDIT_REFRESH_S + 1
        await pilot.pause(0.5)
        assert "audit error" not in _status(app)
        assert ("flaky-01", "erin") in {(n, e.operator) for n, e in _table(app).visible_entries()}
