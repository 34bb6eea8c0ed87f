"""Operator actions from the keyboard, on the demo fleet: previews, confirmation, read-only, undo."""

from __future__ import annotations

import asyncio
from typing import Any

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.dialogs.confirm import ConfirmDialog
from console.dialogs.dispatch import DispatchDialog
from console.dialogs.rollback import RollbackPicker
from console.screens.agent import AgentScreen
from console.screens.node import NodeScreen
from console.snapshot import build_app, prime
from widgets.agents_table import AgentsTable

from .conftest import T0


class Spy:
    """Wraps a backend method and records every call that reaches it."""

    def __init__(self, backend: Any, name: str) -> None:
        self.calls: list[tuple[Any, ...]] = []
        original = getattr(backend, name)

        async def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            return await original(*args, **kwargs)

        setattr(backend, name, spy)


async def node_app(*, node: int = 0, read_only: bool = False, config: Config | None = None) -> Any:
    """The app on one demo node (0 is gpu-prod-01, production; 1 is gpu-stage-02, staging)."""
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock, read_only=read_only)[node : node + 1]
    await prime(links, clock)
    return build_app(links, config=config or Config(operator="alice"), clock=clock, screen=None)


async def settle(app: Any) -> None:
    """Wait for the action workers; a flow stuck on a dialog fails the test instead of hanging it."""
    await asyncio.wait_for(app.workers.wait_for_complete(), timeout=10)


def first_agent(app: Any) -> Any:
    return app.screen.query_one(AgentsTable).agent_at_cursor()


def state_of(app: Any, agent_id: str) -> str:
    link = next(iter(app.links.values()))
    return next(a.state for a in link.snapshot.agents if a.id == agent_id)


async def test_pause_and_resume_an_agent_with_p() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        agent = first_agent(app)
        await pilot.press("p")
        await settle(app)
        await pilot.pause()
        assert state_of(app, agent.id) == "paused"
        await pilot.press("p")
        await settle(app)
        await pilot.pause()
        assert state_of(app, agent.id) in ("running", "idle")
        link = next(iter(app.links.values()))
        trail = await link.backend.audit()
        mine = [e for e in trail if e.operator == "alice"]
        assert [(e.action, e.target) for e in mine][-2:] == [
            ("pause", f"agent:{agent.id}"),
            ("resume", f"agent:{agent.id}"),
        ]


async def test_read_only_makes_no_backend_call_and_says_why() -> None:
    app = await node_app(node=1, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        link = next(iter(app.links.values()))
        spies = {
            name: Spy(link.backend, name)
            for name in ("pause", "resume", "stop", "dispatch", "rollback", "checkpoint")
        }
        for key in ("p", "s", "d", "c", "r"):
            await pilot.press(key)
            await pilot.pause()
        await settle(app)
        assert all(not spy.calls for spy in spies.values())
        assert not isinstance(app.screen, (ConfirmDialog, DispatchDialog, RollbackPicker))
        screen = app.screen
        assert isinstance(screen, NodeScreen)
        assert screen.check_action("pause_resume", ()) is None  # shown, disabled
        # the operator layer refuses too, with the reason in words
        assert app.actions.refusal(link, "pause") == "read-only mode (--read-only)"
        app.actions.stop(link, [first_agent(app)])
        await settle(app)
        assert not spies["stop"].calls


async def test_an_action_key_on_a_read_only_node_says_why_it_is_off() -> None:
    app = await node_app(node=1, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key, capability in (("p", "pause"), ("s", "stop"), ("d", "dispatch"), ("c", "checkpoint")):
            app.clear_notifications()
            await pilot.press(key)
            await pilot.pause()
            said = [n.message for n in app._notifications]
            assert said == [f"{capability} is disabled: read-only mode (--read-only)"], (key, said)


async def test_stop_previews_and_enter_alone_cancels() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        link = next(iter(app.links.values()))
        spy = Spy(link.backend, "stop")
        agent = first_agent(app)
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert any(agent.id in line for line in dialog.touched)
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")
        await settle(app)
        await pilot.pause()
        assert not spy.calls
        assert state_of(app, agent.id) != "stopped"
        # now confirm deliberately, with a reason
        await pilot.press("s")
        await pilot.pause()
        await pilot.click("#reason")
        await pilot.press(*"drill")
        await pilot.click("#confirm")
        await settle(app)
        await pilot.pause()
        assert len(spy.calls) == 1
        assert state_of(app, agent.id) == "stopped"
        entry = (await link.backend.audit())[-1]
        assert (entry.action, entry.reason, entry.operator) == ("stop", "drill", "alice")


async def test_production_rollback_needs_the_node_name_and_can_be_undone() -> None:
    app = await node_app(node=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        link = next(iter(app.links.values()))
        spy = Spy(link.backend, "rollback")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RollbackPicker)
        await pilot.press("enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.production
        confirm = dialog.query_one("#confirm")
        assert confirm.disabled
        await pilot.click("#typed")
        await pilot.press(*"gpu-prod-0")
        assert confirm.disabled  # not yet the whole name
        await pilot.press("1")
        await pilot.pause()
        assert not confirm.disabled
        await pilot.click("#confirm")
        await settle(app)
        await pilot.pause()
        assert len(spy.calls) == 1
        safety = app.actions.undo[link.name]
        assert safety.automatic
        # undo: ctrl+z rolls back to the safety checkpoint, through the same confirmation
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#typed")
        await pilot.press(*"gpu-prod-01")
        await pilot.click("#confirm")
        await settle(app)
        assert spy.calls[-1][0] == safety.id


async def test_dispatch_validates_before_sending() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        link = next(iter(app.links.values()))
        spy = Spy(link.backend, "dispatch")
        agent = first_agent(app)
        await pilot.press("d")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DispatchDialog)
        await pilot.click("#payload")
        await pilot.press(*"{not json", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DispatchDialog)
        assert "not JSON" in str(dialog.query_one("#error").render())
        assert not spy.calls
        payload = dialog.query_one("#payload")
        payload.value = '{"prompt": "fix the flaky test"}'  # type: ignore[attr-defined]
        await pilot.click("#dispatch")
        await settle(app)
        await pilot.pause()
        assert len(spy.calls) == 1
        request = spy.calls[0][0]
        assert request.agent_id == agent.id and request.payload == {"prompt": "fix the flaky test"}
        assert any(t.target == f"agent:{agent.id}" for t in link.snapshot.tasks)


async def test_bulk_marks_pause_several_after_a_preview() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentsTable)
        await pilot.press("space", "space")
        chosen = table.chosen_agents()
        assert len(chosen) == 2
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert all(any(a.id in line for line in dialog.touched) for a in chosen)
        await pilot.click("#confirm")
        await settle(app)
        await pilot.pause()
        assert all(state_of(app, a.id) == "paused" for a in chosen)


async def test_agent_screen_pauses_its_agent() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        agent = first_agent(app)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen)
        await pilot.press("p")
        await settle(app)
        await pilot.pause()
        assert state_of(app, agent.id) == "paused"


async def test_keys_are_rebindable() -> None:
    app = await node_app(node=1, config=Config(operator="alice", keys={"pause": "x"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        agent = first_agent(app)
        await pilot.press("p")
        await settle(app)
        assert state_of(app, agent.id) != "paused"
        await pilot.press("x")
        await settle(app)
        await pilot.pause()
        assert state_of(app, agent.id) == "paused"
        assert any(row.action_id == "pause" and row.keys == "x" for row in app.key_help())


async def test_palette_pauses_a_whole_phase_after_a_preview() -> None:
    app = await node_app(node=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        link = next(iter(app.links.values()))
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        phase = next(p for p in link.snapshot.phases if p.status == "active")
        members = [a.id for a in link.snapshot.agents if a.phase_id == phase.id]
        commands[f"Pause phase {phase.name}"].callback()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert any(f"phase {phase.id}" in line for line in dialog.touched)
        await pilot.click("#confirm")
        await settle(app)
        await pilot.pause()
        paused = next(p for p in link.snapshot.phases if p.id == phase.id)
        assert paused.status == "paused"
        assert members and all(state_of(app, a) == "paused" for a in members)


async def test_filter_from_another_tab_shows_the_agents() -> None:
    from textual.widgets import TabbedContent

    app = await node_app(node=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("4", "slash")
        await pilot.pause()
        assert app.screen.query_one(TabbedContent).active == "agents"
        await pilot.press(*"coder")
        await pilot.pause()
        assert all(a.id.startswith("coder") for a in app.screen.query_one(AgentsTable).chosen_agents())
