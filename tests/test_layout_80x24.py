"""Whole at 80x24: every footer shows what matters most (Help first) and never a key cut in half, Help's
lines are never cut, the Fleet table's columns follow the screen whatever a node's error says, and the
agents table picks the columns that fit instead of scrolling sideways."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from backends.demo import demo_fleet
from backends.node_server.app import create_app
from console.app import FleetDeckApp
from console.core.config import Config, NodeConfig
from console.core.fleet_setup import configured_links
from console.snapshot import screen_text
from tests.serving import serve_asgi
from widgets.column_fit import ColumnSpec, fit_columns

SMALL = (80, 24)
WIDE = (200, 50)


def footer_line(app: Any) -> str:
    """The footer's row as shown (a production screen's frame stripped)."""
    footer = app.screen.query_one("Footer")
    return screen_text(app).splitlines()[footer.region.y].strip("┃ ")


async def shown_footer(pilot: Any, app: Any) -> str:
    """The footer's row once it has laid out its keys: it composes them when the screen's bindings are
    ready, which on a busy machine can be a frame or two after the first."""
    deadline = time.monotonic() + 10
    while not (line := footer_line(app)) and time.monotonic() < deadline:
        await pilot.pause(0.05)
    return line


def _keys_inside(app: Any) -> None:
    footer = app.screen.query_one("Footer")
    for key in footer.query("FooterKey"):
        assert key.region.right <= footer.region.right, f"{key.key} is cut at the footer's edge"


# --- footers and Help -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screen", "wanted"),
    [
        (
            "node",
            ["? Help", "/ Filter", "p Pause", "s Stop", "d Dispatch", "l Logs", "r Rollback", "c Checkpoint"],
        ),
        ("agent", ["? Help", "esc Back", "p Pause", "s Stop", "d Dispatch", "l Logs", "r Rollback"]),
        ("agents", ["? Help", "/ Filter", "p Pause", "s Stop", "d Dispatch", "esc Back", "r Rollback"]),
        ("fleet", ["? Help", "0 All agents", "l All logs", "q Quit"]),
        ("logs", ["? Help", "/ Filter", "esc Back", "v Level", "f Follow"]),
        ("audit", ["? Help", "/ Filter", "esc Back", "u Outcome"]),
    ],
)
async def test_every_footer_at_80_columns_shows_what_matters_most_and_no_key_cut(
    frozen_demo_app_async, screen: str, wanted: list[str]
) -> None:
    app = await frozen_demo_app_async(screen=screen)
    async with app.run_test(size=SMALL) as pilot:
        line = await shown_footer(pilot, app)
        for key in wanted:
            assert key in line, (key, line)
        assert line.startswith("? Help"), line  # the key to every other key comes first
        _keys_inside(app)


async def test_a_wide_footer_shows_the_keys_a_narrow_one_leaves_to_help(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        line = await shown_footer(pilot, app)
        for key in (
            "? Help",
            "r Rollback",
            "c Checkpoint",
            "esc Back",
            ": Palette",
            "f Follow",
            "o Sort",
            "q Quit",
        ):
            assert key in line, (key, line)
        _keys_inside(app)


async def test_help_at_80_columns_folds_long_words_instead_of_cutting_them(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="help")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        seen: list[str] = []
        for _ in range(30):  # page through the whole list of keys
            seen.append(screen_text(app))
            await pilot.press("pagedown")
            await pilot.pause()
        text = "\n".join(seen)
        assert "outcome:ok|denied|failed" in text
        assert "…" not in text


# --- the Fleet table with an offline node ------------------------------------------------------------

# what a proxy in front of a dead node says (Envoy's words), as the node's problem detail: 200+ characters
UPSTREAM_DOWN = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure, "
    "transport failure reason: delayed connect error: 111 (connection refused) to 10.0.3.17:8765 "
    "via gateway fleet-gw-eu-west-1b"
)


class Gateway:
    """A proxy in front of a served node: passes requests through, or, while ``down``, answers each one
    with 503 and the upstream error as an RFC 9457 problem."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.down = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.down:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": UPSTREAM_DOWN}
        ).encode()
        headers = [(b"content-type", b"application/problem+json")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _fleet_console(urls: dict[str, str]) -> FleetDeckApp:
    nodes = tuple(NodeConfig(name=name, backend="http", url=url) for name, url in urls.items())
    config = Config(operator="tester", refresh_s=0.3, nodes=nodes)
    return FleetDeckApp(configured_links(config, clock=time.time), config=config, clock=time.time)


async def _until(pilot: Any, check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout  # a test deadline, not a timing
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def _fleet_rows(app: Any) -> dict[str, str]:
    """Each node's row of the Fleet table as shown, by node name."""
    table = app.screen.query_one("FleetTable")
    lines = screen_text(app).splitlines()[table.region.y : table.region.bottom]
    return {name: line for name in app.links for line in lines if f" {name} " in f" {line} "}


def _assert_columns_on_screen(app: Any, *, nothing_past_the_edge: bool = True) -> None:
    header = screen_text(app).splitlines()[app.screen.query_one("FleetTable").region.y]
    for label in ("Node", "Data", "Alerts", "GPUs"):
        assert label in header, header
    table = app.screen.query_one("FleetTable")
    if nothing_past_the_edge:
        assert table.virtual_size.width <= table.size.width, "columns past the table's edge"
    for name, row in _fleet_rows(app).items():
        snapshot = app.links[name].snapshot
        if snapshot is not None:
            healthy = sum(1 for a in snapshot.agents if a.health == "healthy")
            assert f"{healthy}/{len(snapshot.agents)}" in row, row  # its agents column, on screen
            if snapshot.gpus:
                assert f"{len(snapshot.gpus)}× " in row and "°C" in row, row  # its GPUs, whole


async def test_an_offline_node_with_a_long_reason_keeps_every_column_on_screen_and_they_stay() -> None:
    fleet = demo_fleet(seed=7, nodes=3, agents=12, clock=time.time)
    gateway = Gateway(create_app(fleet[0]))
    with serve_asgi(gateway) as far_url, serve_asgi(create_app(fleet[1])) as near_url:
        app = _fleet_console({"far-site": far_url, "near-site": near_url})
        async with app.run_test(size=SMALL) as pilot:
            await _until(
                pilot,
                lambda: len(_fleet_rows(app)) == 2 and "connecting" not in screen_text(app),
                "both live",
            )
            _assert_columns_on_screen(app)

            gateway.down = True
            await _until(pilot, lambda: "offline" in _fleet_rows(app).get("far-site", ""), "far-site offline")
            _assert_columns_on_screen(app)
            row = _fleet_rows(app)["far-site"]
            assert "…" in row and UPSTREAM_DOWN not in screen_text(app)  # cut to its column

            # the whole reason is one enter away
            table = app.screen.query_one("FleetTable")
            table.move_cursor(row=table.row_keys.index("far-site"))
            await pilot.press("enter")
            await _until(pilot, lambda: "far-site is offline" in screen_text(app), "the node screen's note")
            note = app.screen.query_one("#agents-empty")
            lines = screen_text(app).splitlines()[note.region.y : note.region.bottom]
            shown = " ".join(" ".join(line.strip("│┃ ").split()) for line in lines)
            assert UPSTREAM_DOWN in shown, shown
            header = screen_text(app).splitlines()[app.screen.query_one("NodeHeader").region.y]
            assert "far-site" in header  # the data age keeps to its share of the header
            await pilot.press("escape")
            await pilot.pause()

            gateway.down = False
            await _until(pilot, lambda: "live" in _fleet_rows(app).get("far-site", ""), "far-site back live")
            _assert_columns_on_screen(app)
            assert "offline" not in screen_text(app)


# --- the agents table picks the columns that fit ------------------------------------------------------

BY_PRIORITY = ["Agent", "Health", "State", "Why / doing"]  # the first columns at 80, in this order
EVERY_COLUMN = ["Agent", "Health", "State", "Why / doing", "Role", "Phase", "Prog", "CPU", "RSS", "GPU mem"]


def _agents_table(app: Any) -> Any:
    return app.screen.query_one("AgentsTable")


def _agents_header(app: Any) -> str:
    return screen_text(app).splitlines()[_agents_table(app).region.y]


def _assert_fits(app: Any) -> None:
    table = _agents_table(app)
    assert table.max_scroll_x == 0, "the agents table scrolls sideways"
    lines = screen_text(app).splitlines()[table.region.y + 1 : table.region.bottom - 1]
    names = {a.name for link in app.links.values() if link.snapshot for a in link.snapshot.agents}
    shown = [line for line in lines if line.strip("│┃ ")]
    assert shown
    for line in shown:  # every row: the agent's whole name and its health, in words
        assert names & set(line.strip("│┃ ").split()), line
        assert any(word in line for word in ("healthy", "degraded", "unknown")), line


@pytest.mark.parametrize("screen", ["node", "agents"])
async def test_the_agents_table_at_80_columns_shows_the_columns_that_fit_by_priority(
    frozen_demo_app_async, screen: str
) -> None:
    app = await frozen_demo_app_async(screen=screen)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        header = _agents_header(app)
        places = [header.find(label) for label in BY_PRIORITY]
        assert all(p >= 0 for p in places) and places == sorted(places), header
        _assert_fits(app)
        # a wider terminal brings every column back; a narrower one takes them away again
        await pilot.resize_terminal(*WIDE)
        await pilot.pause()
        await pilot.pause()
        header = _agents_header(app)
        # All agents has the whole width; the Node screen's wide layout gives agents three fifths of it
        wanted = EVERY_COLUMN if screen == "agents" else [*BY_PRIORITY, "CPU", "GPU mem"]
        assert all(label in header for label in wanted), header
        _assert_fits(app)
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        await pilot.pause()
        assert "GPU mem" not in _agents_header(app)
        _assert_fits(app)


def test_columns_are_taken_by_rank_while_they_fit_and_the_free_text_takes_the_rest() -> None:
    specs = [
        ColumnSpec("name", 10, rank=0),
        ColumnSpec("why", 200, rank=0, elastic_min=16, elastic_want=30, grow_after=2),
        ColumnSpec("health", 11, rank=1),
        ColumnSpec("cpu", 4, rank=2),
        ColumnSpec("role", 12, rank=3),
        ColumnSpec("rst", 3, rank=4),
    ]
    # 80 columns: by rank until one does not fit (rst); the text gets what is left, never its 200
    assert fit_columns(specs, 80) == {"name": 10, "why": 33, "health": 11, "cpu": 4, "role": 12}
    assert fit_columns(specs, 200)["rst"] == 3
    # narrower: the text first grows to 30, then rank 3 does not fit, and rank 4 may not jump the queue
    assert fit_columns(specs, 70) == {"name": 10, "why": 37, "health": 11, "cpu": 4}
    # a screen too narrow for the text's minimum keeps what is always shown
    assert fit_columns(specs, 20) == {"name": 10, "why": 16}
    # a short text takes no more room than it needs
    short = [ColumnSpec("name", 10, rank=0), ColumnSpec("why", 4, rank=0, elastic_min=16)]
    assert fit_columns(short, 80) == {"name": 10, "why": 4}
