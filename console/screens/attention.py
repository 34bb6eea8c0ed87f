"""The console side of the Attention panel, shared by the Fleet and Node screens: the app's AlertBook turned
into widget rows and a panel title, and what enter, acknowledge and snooze do there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Static

from backends.model import NodeSnapshot
from console.core.alert_book import DEFAULT_SNOOZE_S, AlertBook, TrackedAlert, open_counts
from console.core.alerts import NEEDS_YOU_RULES, agent_labels
from console.messages import OpenAgent
from widgets.attention import AttentionList, AttentionRow
from widgets.format import fmt_duration
from widgets.steady import set_border_title

if TYPE_CHECKING:
    from console.context import DeckContext
    from console.core.node_link import NodeLink

EMPTY_TEXT: Final = "✔ nothing needs attention"
EMPTY_CLASS: Final = "attention-empty"
# Where enter on an alert goes when its subject is not an agent: the Node screen's tab that shows it.
SUBJECT_TABS: Final = {"gpu": "gpus", "host": "host", "phase": "plan", "node": "logs"}


class AgentNames:
    """The label an agent alert's subject is shown with ("agent:planner", not 32 hex digits of a Ray
    actor's id), from the node's latest snapshot: :func:`console.core.alerts.agent_labels`, worked out
    once per snapshot of a node and only for a node that has an agent alert."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[NodeSnapshot, dict[str, str]]] = {}

    def label(self, links: Mapping[str, NodeLink] | None, node: str, subject: str) -> str | None:
        kind, _, agent_id = subject.partition(":")
        link = links.get(node) if links is not None and kind == "agent" else None
        snapshot = link.snapshot if link is not None else None
        if snapshot is None:
            return None
        made = self._made.get(node)
        if made is None or made[0] is not snapshot:
            made = self._made[node] = (snapshot, agent_labels(snapshot.agents))
        shown = made[1].get(agent_id)
        return f"agent:{shown}" if shown is not None and shown != agent_id else None


_AGENT_NAMES = AgentNames()


def attention_row(entry: TrackedAlert, now: float, label: str | None = None) -> AttentionRow:
    return AttentionRow(
        key=entry.key,
        severity=entry.severity,
        node=entry.node,
        subject=entry.subject,
        reason=entry.reason,
        since=entry.since,
        times=entry.times,
        acked=entry.acked,
        snoozed_until=entry.snoozed_until if entry.snoozed(now) else None,
        label=label,
        needs_you=entry.rule in NEEDS_YOU_RULES,
    )


def attention_rows(
    book: AlertBook, now: float, node: str | None = None, links: Mapping[str, NodeLink] | None = None
) -> list[AttentionRow]:
    """``links``: the nodes, by name, whose snapshots name the agents of agent alerts."""
    return rows_of(book.active(node), now, links)


def rows_of(
    active: Iterable[TrackedAlert], now: float, links: Mapping[str, NodeLink] | None = None
) -> list[AttentionRow]:
    return [
        attention_row(entry, now, _AGENT_NAMES.label(links, entry.node, entry.subject)) for entry in active
    ]


def attention_title(book: AlertBook, now: float, node: str | None = None, label: str = "Attention") -> str:
    """E.g. "Attention · 1 critical · 6 warning · 2 acked · 1 snoozed": the counts are of open alerts."""
    return title_of(book.active(node), now, label)


def title_of(active: Sequence[TrackedAlert], now: float, label: str = "Attention") -> str:
    critical, warning = open_counts(active, now)
    acked = sum(1 for e in active if e.acked and not e.snoozed(now))
    snoozed = sum(1 for e in active if e.snoozed(now))
    parts = [label, f"{critical} critical", f"{warning} warning"]
    if acked:
        parts.append(f"{acked} acked")
    if snoozed:
        parts.append(f"{snoozed} snoozed")
    return " · ".join(parts)


def attention_panel_body(list_id: str, *, node_column: bool) -> list[Widget]:
    """What goes inside an Attention panel: the "nothing" line and the list, one shown at a time."""
    return [Static(EMPTY_TEXT, classes=EMPTY_CLASS), AttentionList(id=list_id, node_column=node_column)]


def fill_attention(
    panel: Widget,
    book: AlertBook,
    now: float,
    node: str | None = None,
    label: str = "Attention",
    links: Mapping[str, NodeLink] | None = None,
) -> None:
    """Show the book's alerts (of ``node``, or all) in ``panel``, or the "nothing" line; and the title."""
    active = book.active(node)  # sorted once for the rows and the title: a storm holds tens of thousands
    rows = rows_of(active, now, links)
    attention = panel.query_one(AttentionList)
    attention.show(rows, now)
    empty = not rows
    panel.query_one(f".{EMPTY_CLASS}", Static).display = empty
    attention.display = not empty
    set_border_title(panel, title_of(active, now, label))


def subject_tab(subject: str) -> str | None:
    """The Node screen tab showing ``subject`` ("gpu:3" -> "gpus"); None for an agent (it has a screen)."""
    kind = subject.split(":", 1)[0]
    return None if kind == "agent" else SUBJECT_TABS.get(kind, "logs")


class AttentionHandlers:
    """Mixed into a FleetDeckScreen that shows an AttentionList: enter jumps, A acknowledges, z snoozes."""

    @property
    def _deck(self) -> DeckContext:
        return cast(Any, self).deck  # FleetDeckScreen provides it

    def refresh_attention(self) -> None:
        """Repaint the screen's Attention panel from the book."""
        raise NotImplementedError

    def show_node_tab(self, link: NodeLink, tab: str) -> None:
        """Show ``link``'s Node screen on ``tab``."""
        raise NotImplementedError

    def on_attention_list_jump(self, event: AttentionList.Jump) -> None:
        event.stop()
        link = self._deck.links.get(event.row.node)
        if link is None:
            return
        tab = subject_tab(event.row.subject)
        if tab is None:
            cast(Any, self).navigate(OpenAgent(link, event.row.subject.split(":", 1)[1]))
        else:
            self.show_node_tab(link, tab)

    def on_attention_list_acknowledge(self, event: AttentionList.Acknowledge) -> None:
        event.stop()
        book, row = self._deck.alert_book, event.row
        if row.acked:
            done, what = book.unacknowledge(row.key), "acknowledgement taken back"
        else:
            done, what = book.acknowledge(row.key), "acknowledged"
        self._after_triage(done, f"{what}: {row.node} {row.shown_subject}")

    def on_attention_list_snooze(self, event: AttentionList.Snooze) -> None:
        event.stop()
        book, row = self._deck.alert_book, event.row
        if row.snoozed_until is not None:
            done, what = book.unsnooze(row.key), "snooze ended"
        else:
            done, what = book.snooze(row.key), f"snoozed for {fmt_duration(DEFAULT_SNOOZE_S)}"
        self._after_triage(done, f"{what}: {row.node} {row.shown_subject}")

    def _after_triage(self, done: bool, message: str) -> None:
        screen = cast(Any, self)
        if not done:  # the alert cleared between the paint and the key
            screen.notify("that alert is no longer active", severity="warning", timeout=3)
        else:
            screen.notify(message, timeout=3)
        with contextlib.suppress(NoMatches):  # a screen recomposing (a resize) repaints when it mounts
            self.refresh_attention()
