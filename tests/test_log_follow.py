"""The log pane follows the newest line, except while the operator holds its scrollbar (as Textual's Log)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from backends.model import LogRecord
from widgets.log_view import LogView

NOW = 1_767_225_600.0


class Host(App[None]):
    def __init__(self, view: LogView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view


def records(first: int, last: int) -> list[LogRecord]:
    return [
        LogRecord(seq=seq, ts=NOW + seq, level="info", source="a", message=f"line {seq}")
        for seq in range(first, last + 1)
    ]


async def test_a_held_scrollbar_stops_the_pane_following_until_it_is_let_go() -> None:
    view = LogView()
    async with Host(view).run_test(size=(60, 12)) as pilot:
        view.write_records("n", records(1, 100))
        await pilot.pause()
        assert view.follow and view.scroll_y == view.max_scroll_y > 0

        # the operator takes the scrollbar's thumb (at the bottom) and drags it to the top
        bar = view.vertical_scrollbar
        await pilot.mouse_down(bar, offset=(0, bar.size.height - 1))
        assert view.is_vertical_scrollbar_grabbed
        await pilot.hover(bar, offset=(0, 0))
        await pilot.pause()
        held_at = view.scroll_y
        assert held_at < view.max_scroll_y

        # lines keep arriving while it is held: the view stays where the operator holds it
        view.write_records("n", records(101, 150))
        await pilot.pause()
        await pilot.pause()
        assert view.is_vertical_scrollbar_grabbed
        assert view.scroll_y == held_at < view.max_scroll_y
        assert view.follow  # still in follow mode: only paused while held

        # let go: the next lines take the view to the newest again
        await pilot.mouse_up(bar)
        assert not view.is_vertical_scrollbar_grabbed
        view.write_records("n", records(151, 160))
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        assert view.visible_records()[-1].seq == 160
