"""RowTable on its own: the cursor belongs to a row's key, clicks and keys act as in any list, measured
columns follow their cells, and what is drawn is always the newest cells of the row on that line."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult

from widgets.row_table import RowTable, TableColumn


class Host(App[None]):
    def __init__(self, table: RowTable[Any]) -> None:
        super().__init__()
        self.table = table
        self.messages: list[Any] = []

    def compose(self) -> ComposeResult:
        yield self.table

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.messages.append(("highlighted", event.row_key))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.messages.append(("selected", event.row_key))

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        self.messages.append(("header", event.column_key))


def table_of(rows: dict[str, tuple[str, ...]]) -> RowTable[Any]:
    table: RowTable[Any] = RowTable()
    table.set_columns([TableColumn("name", "Name", 8), TableColumn("value", "Value")])
    table.sync_rows(rows)
    return table


def lines(table: RowTable[Any]) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


async def test_the_cursor_follows_its_row_through_a_new_order_and_says_so() -> None:
    table = table_of({"a": ("a", "1"), "b": ("b", "2"), "c": ("c", "3")})
    host = Host(table)
    async with host.run_test(size=(40, 10)) as pilot:
        table.move_cursor(row=1)
        await pilot.pause()
        assert table.key_at_cursor() == "b"
        host.messages.clear()
        table.sync_rows({"c": ("c", "3"), "a": ("a", "1"), "b": ("b", "2")})  # b moves to the end
        await pilot.pause()
        assert table.key_at_cursor() == "b" and table.cursor_row == 2
        assert host.messages == []  # the same row under the cursor: nothing to say
        table.sync_rows({"c": ("c", "3"), "a": ("a", "1")})  # b goes: the cursor stays at its place
        await pilot.pause()
        assert table.key_at_cursor() == "a"
        assert host.messages == [("highlighted", "a")]


async def test_keys_move_the_cursor_and_enter_selects() -> None:
    table = table_of({f"r{i:02d}": (f"r{i:02d}", str(i)) for i in range(40)})
    host = Host(table)
    async with host.run_test(size=(40, 10)) as pilot:
        table.focus()
        await pilot.press("end")
        assert table.key_at_cursor() == "r39"
        assert any("r39" in line for line in lines(table))  # scrolled into view
        assert lines(table)[0].split() == ["Name", "Value"]  # the header stays on top
        await pilot.press("home", "down", "down", "pagedown")
        assert table.cursor_row == 2 + 9  # a page is the lines below the header
        await pilot.press("enter")
        await pilot.pause()
        assert host.messages[-1] == ("selected", "r11")


async def test_a_click_moves_the_cursor_a_second_selects_and_a_header_click_names_its_column() -> None:
    table = table_of({"a": ("a", "1"), "b": ("b", "2")})
    host = Host(table)
    async with host.run_test(size=(40, 10)) as pilot:
        await pilot.click(RowTable, offset=(2, 2))  # the second row (the header is line 0)
        await pilot.pause()
        assert table.key_at_cursor() == "b"
        assert ("selected", "b") not in host.messages
        await pilot.click(RowTable, offset=(2, 2))
        await pilot.pause()
        assert host.messages[-1] == ("selected", "b")
        await pilot.click(RowTable, offset=(12, 0))  # past Name's 8 columns and padding: Value
        await pilot.pause()
        assert host.messages[-1] == ("header", "value")


async def test_a_measured_column_widens_and_narrows_with_its_cells() -> None:
    table = table_of({"a": ("a", "1")})
    async with Host(table).run_test(size=(60, 10)) as pilot:
        assert table.column_widths == {"name": 8, "value": 5}  # its label: "Value"
        table.sync_rows({"a": ("a", "a much longer value")})
        await pilot.pause()
        assert table.column_widths["value"] == len("a much longer value")
        table.sync_rows({"a": ("a", "1")})
        await pilot.pause()
        assert table.column_widths["value"] == 5


async def test_cells_are_shown_as_they_are_never_as_markup() -> None:
    table = table_of({"a": ("[bold red]x[/]", "[link=https://evil]ok[/]")})
    async with Host(table).run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        assert "[bold red]x[/]"[:8] in lines(table)[1]  # cut to its 8 columns, brackets and all
        assert "[link=https://evil]ok[/]" in lines(table)[1]


async def test_a_row_whose_cells_were_forgotten_is_never_drawn_from_its_old_strip() -> None:
    table = table_of({"a": ("a", "old")})
    async with Host(table).run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert "old" in lines(table)[1]
        table.forget_cells(["a"])
        table.update_rows({"a": ("a", "new")})
        await pilot.pause()
        assert "new" in lines(table)[1] and "old" not in lines(table)[1]


async def test_a_styled_cell_keeps_its_colour_and_the_stripe_runs_to_the_edge() -> None:
    table = table_of({"a": ("a", "1"), "b": (Text("b", style="red"), "2")})
    async with Host(table).run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        segments = list(table.render_line(2))  # b's row, not under the cursor
        assert any(s.text.startswith("b") and s.style and s.style.color.name == "red" for s in segments)
        assert segments[-1].style == segments[0].style  # the room past the columns has the row's stripe
