"""Widgets tested with hand-made model objects on a bare Textual app: no backend, no console."""

from __future__ import annotations

from textual.app import App, ComposeResult

from backends.model import Agent, Gpu, GpuStatus, LogRecord
from widgets.agents_table import AgentsTable
from widgets.format import bar, fmt_bytes, fmt_percent, spark
from widgets.gpu_panel import GpuPanel
from widgets.log_view import LogFilter, LogView

from .table_spy import TableSpy

NOW = 1_767_225_600.0


class Host(App[None]):
    def __init__(self, *widgets: object) -> None:
        super().__init__()
        self._widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self._widgets  # type: ignore[misc]


def agent(ident: str, **fields: object) -> Agent:
    base: dict[str, object] = {"id": ident, "name": ident, "state": "running", "health": "healthy"}
    base.update(fields)
    return Agent(**base)  # type: ignore[arg-type]


def test_unknown_values_render_as_na_never_zero() -> None:
    assert fmt_bytes(None) == "n/a"
    assert fmt_percent(None) == "n/a"
    assert bar(None, 4) == "····"
    assert fmt_bytes(0) == "0 B"
    assert fmt_bytes(3 * 1024**3) == "3.0 GiB"


def test_sparkline_uses_a_fixed_scale() -> None:
    # a steady 50% must look half full, not like a spike to the top
    assert set(spark([50.0, 50.0, 50.0], 3)) == {"▄"}
    assert spark([0.0, 100.0], 2) == " █"
    assert spark([100.0], 3) == "  █"


async def test_gpu_panel_says_no_nvidia_gpu_with_the_drivers_reason() -> None:
    panel = GpuPanel()
    async with Host(panel).run_test() as pilot:
        panel.show((), GpuStatus(status="no_driver", reason="NVML Shared Library Not Found"), {})
        await pilot.pause()
        text = str(panel.query_one(".no-gpu").render())
        assert "No NVIDIA GPU" in text
        assert "NVML Shared Library Not Found" in text


async def test_gpu_panel_adds_and_removes_cards_by_index() -> None:
    panel = GpuPanel()
    async with Host(panel).run_test() as pilot:
        gpus = tuple(Gpu(index=i, name="NVIDIA H100", util_percent=10.0 * i) for i in range(3))
        panel.show(gpus, GpuStatus(), {})
        await pilot.pause()
        assert sorted(c.gpu_index for c in panel.query("GpuCard")) == [0, 1, 2]  # type: ignore[attr-defined]
        panel.show(gpus[:1], GpuStatus(), {})
        await pilot.pause()
        assert [c.gpu_index for c in panel.query("GpuCard")] == [0]  # type: ignore[attr-defined]


async def test_agents_table_updates_only_the_cells_that_changed() -> None:
    table = AgentsTable()
    async with Host(table).run_test() as pilot:
        agents = [("n", agent("a", cpu_percent=1.0)), ("n", agent("b", cpu_percent=2.0))]
        table.show(agents, NOW)
        await pilot.pause()
        spy = TableSpy(table)
        table.show([("n", agent("a", cpu_percent=1.0)), ("n", agent("b", cpu_percent=7.0))], NOW)
        await pilot.pause()
        assert spy.changed_cells() == {("n/b", "cpu")}
        assert spy.rows_drawn == 1 and not spy.started_over  # b's row drawn again, nothing else
        assert table.get_cell("n/b", "cpu") == "7%"


def screen_lines(table: AgentsTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_agents_table_repaints_a_changed_cell_and_keeps_the_others_rendered() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(120, 10)) as pilot:
        table.show([("n", agent("a", cpu_percent=1.0)), ("n", agent("b", cpu_percent=2.0))], NOW)
        await pilot.pause()
        before = screen_lines(table)
        assert any("a" in line and "1%" in line for line in before)
        drawn = table.rows_drawn  # rows drawn anew (a row not in the strip cache)
        table.show([("n", agent("a", cpu_percent=1.0)), ("n", agent("b", cpu_percent=7.0))], NOW)
        await pilot.pause()
        after = screen_lines(table)
        assert table.rows_drawn - drawn == 1  # b's row drawn again, not every row on screen
        row_b = next(line for line in after if " b " in f" {line} ")
        assert "7%" in row_b and "2%" not in row_b  # the change reached the screen...
        assert [line for line in after if line not in before] == [row_b]  # ...and only its row changed
        drawn = table.rows_drawn
        table.sort_by("cpu")  # a new order: the rows are drawn in their new places...
        await pilot.pause()
        assert table.rows_drawn - drawn <= 2  # ...from the strips kept (only their stripe may be new)
        body = [line for line in screen_lines(table) if "%" in line]
        assert "7%" in body[0] and "1%" in body[1]


async def test_agents_table_renders_only_the_rows_on_screen_until_scrolled_to() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(120, 12)) as pilot:
        fleet = [("n", agent(f"a{i:04d}", cpu_percent=1.0)) for i in range(2000)]
        table.show(fleet, NOW)
        await pilot.pause()
        table.sort_by("name")
        await pilot.pause()
        table.show([("n", agent(a.id, cpu_percent=5.0)) for _, a in fleet], NOW)
        await pilot.pause()
        assert table.get_cell("n/a0000", "cpu") == "5%"  # on screen: up to date
        assert "n/a1999" not in table.held_keys()  # far below: never rendered
        table.move_cursor(row=1999)
        await pilot.pause()
        assert table.get_cell("n/a1999", "cpu") == "5%"  # brought up to date when scrolled to
        assert any("a1999" in line and "5%" in line for line in screen_lines(table))


async def test_agents_table_filter_and_sort() -> None:
    table = AgentsTable()
    async with Host(table).run_test() as pilot:
        table.show(
            [
                ("n", agent("coder-01", labels={"role": "coder"})),
                ("n", agent("reviewer-01", health="unhealthy", health_reason="no heartbeat for 42 s")),
                ("n", agent("coder-02", labels={"role": "coder"}, health="degraded")),
            ],
            NOW,
        )
        await pilot.pause()
        # health sort puts the worst first
        assert [a.id for a in (table.agent_at_cursor(),) if a] == ["reviewer-01"]
        table.set_filter("coder")
        await pilot.pause()
        assert table.shown_count == 2
        table.sort_by("name")
        table.move_cursor(row=0)
        assert table.agent_at_cursor() is not None and table.agent_at_cursor().id == "coder-01"  # type: ignore[union-attr]


def record(seq: int, level: str = "info", source: str = "a", message: str = "hello") -> LogRecord:
    return LogRecord(seq=seq, ts=NOW + seq, level=level, source=source, message=message)  # type: ignore[arg-type]


async def test_log_view_keeps_a_bounded_buffer_and_filters() -> None:
    view = LogView(capacity=5)
    async with Host(view).run_test() as pilot:
        view.write_records("n", [record(i, level="error" if i % 2 else "info") for i in range(1, 9)])
        await pilot.pause()
        assert [r.seq for r in view.visible_records()] == [4, 5, 6, 7, 8]
        # a replayed batch is not shown twice
        view.write_records("n", [record(8), record(9)])
        assert [r.seq for r in view.visible_records()] == [5, 6, 7, 8, 9]
        view.set_filter(LogFilter(min_level="error"))
        assert [r.seq for r in view.visible_records()] == [5, 7]
        view.set_filter(LogFilter(source="nobody"))
        assert view.visible_count == 0


async def test_a_line_stamped_when_fetched_says_so_in_the_log_view_and_the_cli() -> None:
    """A source that gives a line no time (a Ray job's print) is stamped with its fetch time, which the
    line was written at or before: shown "≤", never passed off as the line's own time."""
    from console.cli.node_commands import format_log_line

    own = record(1, message="has its own time")
    fetched = LogRecord(
        seq=2, ts=NOW, level="info", source="job-1", message="print()", fields={"time": "fetched"}
    )
    assert fetched.time_fetched and not own.time_fetched
    assert format_log_line(fetched).startswith("≤2026-01-01T00:00:00Z INFO")
    assert format_log_line(own).startswith("2026-01-01T00:00:01Z INFO")
    view = LogView(capacity=5)
    async with Host(view).run_test():
        assert view.format_record("n", fetched).plain.startswith("≤00:00:00 ")
        assert view.format_record("n", own).plain.startswith("00:00:01 ")


async def test_a_node_joining_adds_its_rows_and_keeps_the_others() -> None:
    """Rows that stay are moved, not re-added, when another node's agents join or a few agents go: a
    hundred-node fleet filling in must not re-add (and re-measure) the whole fleet per node."""
    table = AgentsTable(node_column=True)
    first = [("node-a", agent(f"a-{n:02d}", cpu_percent=float(n))) for n in range(30)]
    second = [("node-b", agent(f"b-{n:02d}", health="degraded" if n % 3 else "healthy")) for n in range(10)]
    async with Host(table).run_test(size=(160, 48)) as pilot:
        table.show(first, NOW)
        await pilot.pause()
        table.move_cursor(row=table.row_keys.index("node-a/a-07"))
        kept = {key: table.get_row(key) for key in table.row_keys}
        spy = TableSpy(table)
        table.show(first + second, NOW)
        await pilot.pause()
        assert all(table.get_row(key) is row for key, row in kept.items())  # the same cells, not new ones
        assert not spy.started_over
        assert table.row_at_cursor() is not None and table.row_at_cursor()[1].id == "a-07"
        # in the order a table shown them all at once has: the degraded of node-b first, by health
        fresh = AgentsTable(node_column=True)
        async with Host(fresh).run_test(size=(160, 48)) as fresh_pilot:
            fresh.show(first + second, NOW)
            await fresh_pilot.pause()
            assert table.row_keys == fresh.row_keys
            assert [table.get_row_at(i) for i in range(table.row_count)] == [
                fresh.get_row_at(i) for i in range(fresh.row_count)
            ]
        # a few agents gone: dropped one by one, the rest kept
        table.show(first[2:] + second, NOW)
        await pilot.pause()
        assert "node-a/a-00" not in table.row_keys
        assert all(
            table.get_row(key) is row
            for key, row in kept.items()
            if key not in ("node-a/a-00", "node-a/a-01")
        )
        assert not spy.started_over
