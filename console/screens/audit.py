"""The Audit screen (`a`): who did what, when, to what, why, with what outcome — every node, newest first.

Entries are fetched in workers, incrementally (only entries after each node's last seq): when the screen is
shown, every few seconds while it is visible, and when an action has just run (``refresh_audit``). A node
that keeps no trail, or whose fetch failed, says so in the status line; the other nodes still show.

The filter line understands words (matched in target, reason, detail and params) and four prefixes:
``operator:alice action:pause outcome:failed node:gpu-01``. Quick keys cycle the operator, action, outcome
and node through the values seen; `e` exports exactly the entries shown as JSON lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import Input, Static
from textual.worker import Worker

from backends.model import AuditEntry
from backends.safe_text import terminal_safe
from console.core.audit_export import default_export_path, write_audit_jsonl
from console.core.audit_trail import AUDIT_REFRESH_S
from console.core.node_link import NodeLink
from widgets.audit_table import AUDIT_OUTCOMES, AuditFilter, AuditTable
from widgets.filter_box import FilterBox
from widgets.key_footer import KeyFooter
from widgets.row_table import RowTable
from widgets.safe import safe_content
from widgets.steady import set_border_subtitle, update_steady

from .audit_detail import AuditDetailScreen
from .base import FleetDeckScreen, filter_binding, filter_binding_allowed

_AGE_SYMBOLS = {"live": "●", "stale": "◐", "offline": "✖", "connecting": "○", "unsupported": "–"}


def _next_value(values: Sequence[str], current: str | None) -> str | None:
    """The value after ``current`` in ``values``, then None ("all") after the last: a quick key's cycle."""
    if not values:
        return None
    lowered = [v.lower() for v in values]
    if current is None or current.lower() not in lowered:
        return values[0] if current is None else None
    index = lowered.index(current.lower()) + 1
    return values[index] if index < len(values) else None


def _ready(link: NodeLink) -> bool:
    # A node that never answered a poll may not be open yet; its trail is fetched once it has.
    return link.snapshot is not None or not link.backend.supports("audit")


# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = (
    "help",
    "filter",
    "back",
    "open",
    "outcome_filter",
    "operator_filter",
    "action_filter",
    "export",
    "node_filter",
    "clear_filter",
    "palette",
    "quit",
    "theme",
)


class AuditScreen(FleetDeckScreen):
    DEFAULT_CSS = """
    AuditScreen #audit-status { height: 1; background: $panel; padding: 0 1; }
    AuditScreen #audit-panel { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="Close the filter box, or go back"),
        filter_binding("Filter: words, operator:NAME, action:NAME, outcome:ok|denied|failed, node:NAME"),
        Binding("o", "cycle_operator", "Operator", id="operator_filter", tooltip="Cycle the operator shown"),
        Binding("w", "cycle_action", "Action", id="action_filter", tooltip="Cycle the action (what) shown"),
        Binding(
            "u",
            "cycle_outcome",
            "Outcome",
            id="outcome_filter",
            tooltip="Cycle the outcome: failed, denied, ok",
        ),
        Binding("n", "cycle_node", "Node", id="node_filter", show=False, tooltip="Cycle the node shown"),
        Binding("x", "clear_filter", "Clear filter", id="clear_filter", show=False),
        Binding(
            "e", "export", "Export", id="export", tooltip="Write the entries shown as JSON lines (.jsonl)"
        ),
        Binding("enter", "details", "Details", id="open", show=False, tooltip="The selected entry in full"),
    ]

    AUTO_FOCUS = "AuditTable"  # from the first frame: a key typed meanwhile must not land in the filter

    def compose(self) -> ComposeResult:
        yield Static(id="audit-status")
        yield FilterBox(
            placeholder="words, operator:NAME, action:NAME, outcome:failed, node:NAME   (enter applies)",
            id="audit-filter",
        )
        with Vertical(id="audit-panel", classes="panel") as panel:
            panel.border_title = "Audit trail · newest first"
            yield AuditTable(id="audit-table", node_column=len(self.deck.links) > 1)
        yield KeyFooter(order=FOOTER_ORDER)

    def on_mount(self) -> None:
        self._show()

    # --- fetching ----------------------------------------------------------------------------------------

    def refresh_audit(self) -> Worker[None]:
        """Fetch newer entries from every node now; the app calls this after each action (NodeRefreshed)."""
        return self._fetch_in_worker(list(self.deck.links.values()))

    # A worker bound to this screen: leaving it cancels fetches nobody will see.
    @work(group="audit", name="audit fetch")
    async def _fetch_in_worker(self, links: list[NodeLink]) -> None:
        timeout = max(2.0, 3 * self.deck.refresh_s)
        ready = [link for link in links if _ready(link)]
        await asyncio.gather(
            *(link.audit.fetch(link.backend, timeout=timeout, clock=link.clock) for link in ready)
        )
        # the screen may have been closed (or the app be shutting down) while the nodes answered
        with suppress(NoMatches):
            self._show()

    def on_screen_resume(self) -> None:
        # Shown (first time or again): paint what is held at once, then catch up with the nodes.
        self._show()
        self.refresh_audit()

    def node_updated(self, link: NodeLink) -> None:
        """Called on every poll while visible: refetch this node's trail when due, else repaint the status."""
        trail = link.audit
        due = trail.attempted_at is None or self.deck.clock() - trail.attempted_at >= AUDIT_REFRESH_S
        if due and _ready(link) and not trail.fetching:
            self._fetch_in_worker([link])
        else:
            self._show_status()

    # --- painting ----------------------------------------------------------------------------------------

    def rows(self) -> list[tuple[str, AuditEntry]]:
        """Every fetched entry of every node, as ``(node, entry)``."""
        return [(link.name, entry) for link in self.deck.links.values() for entry in link.audit.entries]

    def _show(self) -> None:
        if not self.is_mounted:
            return
        self.query_one(AuditTable).show(self.rows(), self.deck.clock())
        self._show_status()

    def _show_status(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one(AuditTable)
        shown, total = table.shown_count, table.total_count
        count = f"{total} entries" if shown == total else f"{shown} of {total} entries"
        parts = ["Audit", count, table.filter.describe(), *self._problems()]
        # node names and a node's error text: shown as written, never as markup
        update_steady(self.query_one("#audit-status", Static), safe_content(" · ".join(parts)))
        set_border_subtitle(self.query_one("#audit-panel"), self._ages())

    def _problems(self) -> list[str]:
        """Nodes whose trail is missing or failed, in words: a gap must never read as "nothing was done"."""
        out: list[str] = []
        for link in self.deck.links.values():
            trail = link.audit
            if trail.unsupported:
                out.append(f"– {link.name}: no audit trail ({trail.unsupported})")
            elif trail.error:
                out.append(f"✖ {link.name}: audit error: {trail.error}")
            elif link.snapshot is None:
                out.append(f"○ {link.name}: {self.freshness(link)[1]}")
        return out

    def _ages(self) -> str:
        """The panel's data age: one word when every node agrees, else each node's."""
        now, frozen = self.deck.clock(), self.deck.frozen
        ages = [(link.name, link.audit.age(now, frozen=frozen)) for link in self.deck.links.values()]
        kinds = {age.text for _, age in ages}
        if len(kinds) == 1:
            age = ages[0][1]
            scope = f"all {len(ages)} nodes " if len(ages) > 1 else ""
            return f"{_AGE_SYMBOLS.get(age.kind, '?')} {scope}{age.text}"
        return " · ".join(f"{name} {_AGE_SYMBOLS.get(age.kind, '?')} {age.text}" for name, age in ages)

    # --- filter --------------------------------------------------------------------------------------------

    def _apply(self, audit_filter: AuditFilter) -> None:
        self.query_one(AuditTable).set_filter(audit_filter)
        self._show_status()

    def _set_filter(self, audit_filter: AuditFilter) -> None:
        """A quick key changed the filter: keep the filter line in step, so `/` shows what is in force."""
        box = self.query_one("#audit-filter", Input)
        box.value = terminal_safe(audit_filter.query())  # an operator's name from the trail: shown safely
        self._apply(audit_filter)

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply(AuditFilter.parse(event.value))

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#audit-filter", FilterBox).close(clear=False, focus=self.query_one(AuditTable))

    def action_filter(self) -> None:
        self.query_one("#audit-filter", FilterBox).open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return filter_binding_allowed(self) if action == "filter" else True

    def action_back(self) -> None:
        box = self.query_one("#audit-filter", FilterBox)
        if box.is_open:  # the filter stays in force, and the status line says which
            box.close(clear=False, focus=self.query_one(AuditTable))
            return
        self.app.pop_screen()

    def action_clear_filter(self) -> None:
        self._set_filter(AuditFilter())

    def _seen(self, field: str) -> list[str]:
        return sorted({getattr(entry, field) for _, entry in self.rows()}, key=str.lower)

    def action_cycle_operator(self) -> None:
        current = self.query_one(AuditTable).filter
        self._set_filter(current.with_(operator=_next_value(self._seen("operator"), current.operator)))

    def action_cycle_action(self) -> None:
        current = self.query_one(AuditTable).filter
        self._set_filter(current.with_(action=_next_value(self._seen("action"), current.action)))

    def action_cycle_outcome(self) -> None:
        current = self.query_one(AuditTable).filter
        # the problems first: an on-call responder presses this to see what went wrong
        order = sorted(AUDIT_OUTCOMES, key=("failed", "denied", "ok").index)
        self._set_filter(current.with_(outcome=_next_value(order, current.outcome)))

    def action_cycle_node(self) -> None:
        current = self.query_one(AuditTable).filter
        self._set_filter(current.with_(node=_next_value(list(self.deck.links), current.node)))

    # --- details and export ----------------------------------------------------------------------------

    @on(RowTable.RowSelected, "#audit-table")
    def _row_selected(self, event: RowTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        picked = self.query_one(AuditTable).entry_at_cursor()
        if picked is not None:
            self.app.push_screen(AuditDetailScreen(*picked, now=self.deck.clock()))

    def action_export(self) -> None:
        rows = self.query_one(AuditTable).visible_entries()
        if not rows:
            self.notify("no entries shown: nothing to export", title="audit export", severity="warning")
            return
        path: Path | str = "the current directory"
        try:  # finding the current directory can fail too (it may have been deleted)
            path = default_export_path(self.deck.clock())
            written = write_audit_jsonl(path, rows)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            self.notify(
                f"could not write {path}: {reason}", title="audit export", severity="error", timeout=10
            )
            return
        self.notify(f"{len(rows)} entries written to {written}", title="audit export", timeout=8)
