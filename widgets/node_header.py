"""The line that always says where you are: node name, environment, backend, host, health, data age."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from backends.model import NodeSnapshot, health_count

from .data_age import DataAge, Freshness
from .format import fmt_health
from .safe import safe_text
from .steady import update_steady


def header_text(name: str, environment: str, snapshot: NodeSnapshot | None, read_only: bool) -> Text:
    """The node's own words (backend, version, host name) are untrusted as the rest: shown with safe_text."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append_text(safe_text(f" {name} ", style="bold reverse"))
    env_style = {"production": "bold white on red", "staging": "bold black on yellow"}.get(
        environment, "bold"
    )
    text.append(" ")
    text.append_text(safe_text(f" {environment.upper()} ", style=env_style))
    if read_only:
        text.append(" ")
        text.append(" READ-ONLY: actions off ", style="bold reverse")
    if snapshot is not None:
        info = snapshot.node
        text.append_text(safe_text(f"  {info.backend}", style="dim"))
        if info.version:
            text.append_text(safe_text(f" {info.version}", style="dim"))
        if info.hostname:
            text.append_text(safe_text(f" · {info.hostname}", style="dim"))
        count = health_count(snapshot.agents)
        style = "bold" if count.healthy == count.alive else "bold yellow"
        text.append(f"  {fmt_health(count)}", style=style)
        text.append(f" · {len(snapshot.gpus)} GPU" + ("s" if len(snapshot.gpus) != 1 else ""), style="dim")
    return text


class NodeHeader(Horizontal):
    DEFAULT_CSS = """
    NodeHeader { height: 1; background: $panel; }
    NodeHeader > .title { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    /* "offline: <the node's error>" can be any length: it keeps to its share and is cut with "…" (the
       Node screen shows it whole) */
    NodeHeader > DataAge { max-width: 50%; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="title")
        yield DataAge()

    def show(
        self,
        name: str,
        environment: str,
        snapshot: NodeSnapshot | None,
        read_only: bool,
        freshness: Freshness,
        freshness_text: str,
    ) -> None:
        text = header_text(name, environment, snapshot, read_only)
        if text != self._shown:
            self._shown = text
            update_steady(self.query_one(".title", Static), text)
        self.query_one(DataAge).show(freshness, freshness_text)
