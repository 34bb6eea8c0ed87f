"""Help (`?`): every key in force, by screen, with the config's rebindings applied."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from console.keys import KeyHelp

from .base import FleetDeckScreen


def help_table(rows: list[KeyHelp]) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold", expand=False)
    table.add_column("Where")
    table.add_column("Key", style="bold")
    table.add_column("Does")
    table.add_column("Config name", style="dim")
    last = None
    for row in rows:
        table.add_row(row.context if row.context != last else "", row.keys, row.description, row.action_id)
        last = row.context
    return table


class HelpScreen(FleetDeckScreen):
    DEFAULT_CSS = """
    HelpScreen #help-body { padding: 0 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "back", "Close help", id="close_help")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="panel") as body:
            body.border_title = "Keys"
            yield Static(help_table(self.deck.key_help()))
            yield Static(
                Text(
                    "\nRebind a key in the config file's [keys] table by its config name, "
                    'e.g. quit = "ctrl+q".\n'
                    "The palette (ctrl+p or :) lists every screen, node and theme.",
                    style="dim",
                )
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_back(self) -> None:
        self.app.pop_screen()
