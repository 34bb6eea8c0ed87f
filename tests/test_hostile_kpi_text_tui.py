"""Hostile text in issue 16's new fields, through Pilot: an operator's gate sign-off reason, a criterion
bound to a KPI, and an agent reporting KPIs reach the node screen's plan board and KPI panel with their
controls visible and their markup literal."""

from __future__ import annotations

import msgspec

from backends.model import Agent, Criterion, Gate, GateSignoff, Kpi, Milestone, NodeSnapshot, Phase
from console.app import FleetDeckApp
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.node_link import NodeLink
from console.snapshot import build_app, prime

from .hostile import SHORT
from .hostile_backend import T0, HostileBackend
from .test_hostile_text_tui import SMALL, WIDE, settle, shows

REASON_SHOWN = "␛]0;pwned␇[link=http://x]click[/link] signed"


class SignedHostileBackend(HostileBackend):
    async def snapshot(self) -> NodeSnapshot:
        snap = await super().snapshot()
        criterion = Criterion(name=SHORT, target="< 100 ms", actual="97 ms", kpi="latency_p95_ms", since=T0)
        gate = Gate(
            decision="no-go",
            reasons=(SHORT,),
            since=T0 - 60,
            signed=GateSignoff(decision="go", operator=SHORT, at=T0 - 30, reason=f"{SHORT} signed"),
        )
        phase = Phase(
            id="p1", name=SHORT, order=1, status="active", progress=0.5, gate=gate,
            milestones=(Milestone(id="m1", name=SHORT, status="active", criteria=(criterion,)),),
        )  # fmt: skip
        kpis = (Kpi(name="latency_p95_ms", value=97.0, unit="ms", at=T0),)
        agents: tuple[Agent, ...] = tuple(msgspec.structs.replace(a, kpis=kpis) for a in snap.agents)
        return msgspec.structs.replace(snap, phases=(phase,), agents=agents)


async def signed_app() -> FleetDeckApp:
    clock = FrozenClock(T0)
    made = [NodeLink("edge", SignedHostileBackend(clock), clock=clock)]
    await prime(made, clock)
    return build_app(made, config=Config(), clock=clock, screen=None)


async def test_a_sign_off_reason_and_kpi_criterion_show_safely_on_the_wide_node_screen() -> None:
    app = await signed_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        shows(app, "node screen", "␛]0;pwned␇", REASON_SHOWN)


async def test_every_tab_at_80x24_shows_the_sign_off_and_kpis_safely() -> None:
    app = await signed_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        seen = ""
        for tab in "1234567":
            await pilot.press(tab)
            await settle(pilot)
            seen += shows(app, f"tab {tab}")
        assert REASON_SHOWN in seen, seen
