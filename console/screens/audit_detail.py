"""One audit entry in full (Enter on the Audit screen): every field, params as indented JSON, nothing cut.

Every field is what an operator or a node wrote: each cell is a ``safe_text``, multi-line where the pane has
room (reason, detail, params), and never parsed as markup.
"""

from __future__ import annotations

import json
import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from backends.model import AuditEntry, to_builtins
from widgets.audit_table import outcome_cell
from widgets.format import NA, fmt_ago
from widgets.safe import safe_text
from widgets.steady import set_border_subtitle, set_border_title


def audit_detail_table(node: str, entry: AuditEntry, now: float) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry.ts))
    table.add_row("When", f"{stamp} ({fmt_ago(entry.ts, now)})")
    table.add_row("Node", safe_text(node))
    table.add_row("Who", safe_text(entry.operator, style="bold"))
    table.add_row("Did", safe_text(entry.action, style="bold"))
    table.add_row("To", safe_text(entry.target or NA))
    table.add_row("Outcome", outcome_cell(entry.outcome))
    why = safe_text(entry.reason, multiline=True) if entry.reason else Text("no reason given", style="dim")
    table.add_row("Why", why)
    table.add_row("Detail", safe_text(entry.detail or NA, multiline=True))
    table.add_row("Seq", str(entry.seq))
    table.add_row("Request", safe_text(entry.request_id or NA))
    # ASCII JSON: every control and non-ASCII character escaped, so the params read exactly as stored
    params = json.dumps(to_builtins(entry.params), indent=2, sort_keys=True) if entry.params else NA
    table.add_row("Params", safe_text(params, multiline=True))
    return table


class AuditDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    AuditDetailScreen { align: center middle; }
    AuditDetailScreen #audit-detail {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        padding: 0 1; background: $surface;
    }
    """

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="close_details")]

    def __init__(self, node: str, entry: AuditEntry, now: float) -> None:
        super().__init__()
        self.node = node
        self.entry = entry
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="audit-detail", classes="panel") as body:
            set_border_title(body, f"Audit entry {self.node} #{self.entry.seq}")
            set_border_subtitle(body, "esc closes")
            yield Static(audit_detail_table(self.node, self.entry, self.now))

    def on_mount(self) -> None:
        self.query_one("#audit-detail").focus()

    def action_close(self) -> None:
        self.dismiss(None)
