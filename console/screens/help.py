"""Help (`?`): every key in force, by screen, with the config's rebindings applied."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.keys import KeyHelp
from widgets.key_footer import KeyFooter
from widgets.safe import safe_text

from .base import FleetDeckScreen


def help_table(rows: list[KeyHelp], off: Mapping[str, str] | None = None) -> Table:
    """The keys; an action that is off right now says so, and why, next to what it would do."""
    off = off or {}
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold", expand=False)
    table.add_column("Where")
    table.add_column("Key", style="bold")
    table.add_column("Does", overflow="fold")  # a long word (outcome:ok|denied|failed) folds, never cut
    table.add_column("Config name", style="dim")
    last = None
    for row in rows:
        # Text cells, never markup: the keys come from the config, and why a key is off from the node
        does = safe_text(row.description)
        if row.action_id in off:
            does.stylize("dim strike")
            does.append_text(safe_text(f"  off: {off[row.action_id]}", style="bold"))
        context = safe_text(row.context if row.context != last else "")
        table.add_row(context, safe_text(row.keys), does, safe_text(row.action_id))
        last = row.context
    return table


# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = ("close_help", "palette", "theme")


class HelpScreen(FleetDeckScreen):
    DEFAULT_CSS = """
    HelpScreen #help-body { padding: 0 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "back", "Close help", id="close_help")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="panel") as body:
            body.border_title = "Keys"
            yield Static(help_table(self.deck.key_help(), self._actions_off()))
            yield Static(
                Text(
                    "\nRebind a key in the config file's [keys] table by its config name, "
                    'e.g. quit = "ctrl+q".\n'
                    "The palette (ctrl+p or :) lists every screen, node and theme.",
                    style="dim",
                )
            )
        yield KeyFooter(order=FOOTER_ORDER)

    def _actions_off(self) -> dict[str, str]:
        """Binding id -> why it is off on some node (Help is one list for the whole fleet)."""
        from console.screens.action_keys import ACTION_BINDINGS, ACTION_CAPABILITY

        links = list(self.deck.links.values())
        off: dict[str, str] = {}
        for binding in ACTION_BINDINGS:
            capability = ACTION_CAPABILITY[binding.action]
            for link in links:
                reason = self.deck.actions.refusal(link, capability) if link else None
                if reason and binding.id:
                    off[binding.id] = reason
        return off

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_back(self) -> None:
        self.app.pop_screen()
