"""The operator's actions from the keyboard: dispatch, pause/resume, stop, checkpoint, rollback, and undo.

Every flow runs in a worker: it checks that the action is allowed (read-only, capability) before anything
else, previews and confirms what is destructive, calls the backend, reports the outcome in words, and
re-polls the node at once so the affected rows change now rather than at the next refresh. A refused
action never reaches the backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker

from backends.agent_states import state_refusal
from backends.errors import BackendError
from backends.model import Agent, Checkpoint, Phase, Target
from console.core.describe_error import describe_error
from console.core.node_link import NodeLink
from console.dialogs.checkpoint import CheckpointDialog
from console.dialogs.confirm import ConfirmDialog, Confirmed
from console.dialogs.dispatch import Dispatch, DispatchDialog
from console.dialogs.rollback import RollbackPicker
from console.messages import NodeRefreshed

T = TypeVar("T")
CAPABILITY_WORDS = {
    "dispatch": "dispatch work",
    "pause": "pause",
    "resume": "resume",
    "stop": "stop agents",
    "checkpoint": "take checkpoints",
    "rollback": "roll back",
}


class OperatorHost(Protocol):
    """What the actions need of the app: to say things, to ask (a dialog), to work in the background, and
    to tell the app what changed."""

    def notify(
        self, message: str, *, title: str = ..., severity: Any = ..., timeout: float | None = ...
    ) -> None: ...

    async def push_screen_wait(self, screen: Screen[Any]) -> Any: ...

    def run_worker(self, work: Coroutine[Any, Any, Any], *, group: str = ...) -> Worker[Any]: ...

    def post_message(self, message: Message) -> bool: ...


class Operator:
    def __init__(
        self, host: OperatorHost, *, operator: str, clock: Callable[[], float], refresh_s: float
    ) -> None:
        self.host = host
        self.operator = operator  # who the audit trail names
        self.clock = clock
        self.refresh_s = refresh_s
        self.undo: dict[str, Checkpoint] = {}  # node -> the safety checkpoint of its last rollback
        self.interrupted: dict[str, str] = {}  # node -> what its interrupted rollback is, in words

    # --- may we? ---------------------------------------------------------------------------------------

    def refusal(self, link: NodeLink, capability: str) -> str | None:
        """Why ``capability`` is off on ``link`` (read-only, or the backend lacks it), or None."""
        if link.read_only:
            return link.read_only_reason or f"node {link.name} is read-only"
        if not link.backend.supports(capability):
            note = link.backend.capability_note(capability)
            if note:
                return note
            return f"the {link.backend.name} backend cannot {CAPABILITY_WORDS.get(capability, capability)}"
        return None

    def _allowed(self, link: NodeLink, capability: str) -> bool:
        return not self.explain_refusal(link, capability)

    def explain_refusal(self, link: NodeLink, capability: str) -> bool:
        """Say in a notification why ``capability`` is off on ``link``; False when it is not off."""
        reason = self.refusal(link, capability)
        if reason is not None:
            self.say_disabled(capability, reason)
        return reason is not None

    def say_disabled(self, action: str, reason: str) -> None:
        self.host.notify(f"{action} is disabled: {reason}", severity="warning", timeout=5)

    @staticmethod
    def pause_plan(agents: Sequence[Agent]) -> tuple[str, list[Agent]]:
        """What the pause key does to ``agents``: resume when every one is paused, else pause the others."""
        resume = bool(agents) and all(a.state == "paused" for a in agents)
        return ("resume" if resume else "pause"), [a for a in agents if (a.state == "paused") == resume]

    def pause_refusal(self, agents: Sequence[Agent]) -> tuple[str, str] | None:
        """(action, why) when the pause key can act on none of ``agents`` (a failed one cannot be paused:
        that would only hide the failure), else None."""
        action, chosen = self.pause_plan(agents)
        refused = [why for a in chosen if (why := agent_refusal(action, a))]
        if not chosen or len(refused) < len(chosen):
            return None
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        return action, refused[0] + more

    # --- the flows -------------------------------------------------------------------------------------

    def pause_toggle(self, link: NodeLink, agents: Sequence[Agent]) -> None:
        """Resume when every chosen agent is paused, else pause the ones that are not; an agent whose state
        cannot take it (failed, stopped) is left out and named, and none is sent to the node."""
        if not agents:
            return
        action, chosen = self.pause_plan(agents)
        if not self._allowed(link, action):
            return
        refusals = {a.id: agent_refusal(action, a) for a in chosen}
        refused = [why for why in refusals.values() if why is not None]
        targets = [Target(kind="agent", id=agent_id) for agent_id, why in refusals.items() if why is None]
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            if not targets:
                self.say_disabled(action, refused[0] + more)
                return
            self.host.notify(
                f"{action}: {len(refused)} left out: {refused[0]}{more}", severity="warning", timeout=6
            )
        # pausing several agents at once is destructive enough to preview and confirm
        confirm = action == "pause" and len(targets) > 1
        self.host.run_worker(self._act(link, action, targets, confirm=confirm), group="actions")

    def stop(self, link: NodeLink, agents: Sequence[Agent]) -> None:
        if agents and self._allowed(link, "stop"):
            targets = [Target(kind="agent", id=a.id) for a in agents if a.state not in ("stopped", "failed")]
            if not targets:
                self.host.notify("nothing to stop: the chosen agents are already stopped", timeout=4)
                return
            self.host.run_worker(self._act(link, "stop", targets, confirm=True), group="actions")

    def phase(self, link: NodeLink, action: str, phase: Phase) -> None:
        if self._allowed(link, action):
            confirm = action in ("pause", "stop")
            target = Target(kind="phase", id=phase.id)
            self.host.run_worker(self._act(link, action, [target], confirm=confirm), group="actions")

    def dispatch(self, link: NodeLink, selected: Agent | None) -> None:
        if self._allowed(link, "dispatch"):
            self.host.run_worker(self._dispatch(link, selected), group="actions")

    def checkpoint(self, link: NodeLink) -> None:
        if self._allowed(link, "checkpoint"):
            self.host.run_worker(self._checkpoint(link), group="actions")

    def rollback(self, link: NodeLink, checkpoint_id: str | None = None) -> None:
        if self._allowed(link, "rollback"):
            self.host.run_worker(self._rollback(link, checkpoint_id), group="actions")

    def undo_rollback(self, link: NodeLink) -> None:
        safety = self.undo.get(link.name)
        if safety is None:
            self.host.notify(f"nothing to undo on {link.name}", timeout=4)
            return
        self.rollback(link, safety.id)

    def recover_rollback(self, link: NodeLink) -> None:
        if link.name not in self.interrupted:
            self.host.notify(f"no interrupted rollback on {link.name}", timeout=4)
        elif self._allowed(link, "rollback"):
            self.host.run_worker(self._recover(link), group="actions")

    async def watch_rollback(self, link: NodeLink) -> None:
        """Notice (after each poll) a rollback on the node that was interrupted, and say so once."""
        try:
            notice = await link.backend.interrupted_rollback()
        except Exception:  # a node that cannot tell is no reason to stop polling it
            return
        if notice is None:
            self.interrupted.pop(link.name, None)
            return
        if self.interrupted.get(link.name) != notice:
            self.interrupted[link.name] = notice
            self.host.notify(
                f"{notice}; or from the palette (ctrl+p): Recover the interrupted rollback on {link.name}",
                title=f"rollback interrupted on {link.name}",
                severity="error",
                timeout=30,
            )

    # --- workers ---------------------------------------------------------------------------------------

    async def _act(self, link: NodeLink, action: str, targets: list[Target], *, confirm: bool) -> None:
        reason: str | None = None
        if confirm:
            decided = await self._confirm(link, action, targets)
            if decided is None:
                return
            reason = decided.reason
        done = 0
        method = getattr(link.backend, action)
        for target in targets:
            call = partial(method, target, operator=self.operator, reason=reason)
            # pause/resume/stop return None on success: count "no exception" as done
            done += bool(await self._call(link, f"{action} {target}", self._succeeded(call)))
        if len(targets) > 1:
            self.host.notify(f"{action}: {done}/{len(targets)} done on {link.name}", timeout=4)
        await self._after(link)

    async def _confirm(self, link: NodeLink, action: str, targets: Sequence[Target]) -> Confirmed | None:
        touched = self._touched(link, targets)
        title = f"{action.capitalize()} {len(targets)} target(s) on {link.name}?"
        return await self.host.push_screen_wait(
            ConfirmDialog(
                title,
                touched,
                node=link.name,
                production=link.environment == "production",
                verb=action.capitalize(),
            )
        )

    def _touched(self, link: NodeLink, targets: Sequence[Target]) -> list[str]:
        """Exactly what an action on ``targets`` reaches: agents (with their workspace), running tasks."""
        snapshot = link.snapshot
        agents = {a.id: a for a in snapshot.agents} if snapshot else {}
        lines: list[str] = []
        for target in targets:
            if target.kind == "phase" and snapshot is not None:
                members = [a for a in snapshot.agents if a.phase_id == target.id]
                lines.append(f"phase {target.id} and its {len(members)} agent(s)")
                lines.extend(f"  agent {a.id} ({a.state})" for a in members)
                continue
            agent = agents.get(target.id) if target.kind == "agent" else None
            if agent is None:
                lines.append(str(target))
                continue
            where = f", workspace {agent.labels['workspace']}" if "workspace" in agent.labels else ""
            lines.append(f"agent {agent.id} ({agent.state}{where})")
            if agent.current_task:
                lines.append(f"  running task {agent.current_task}")
        if snapshot is not None:
            ids = {f"agent:{t.id}" for t in targets if t.kind == "agent"}
            running = [t for t in snapshot.tasks if t.target in ids and t.status == "running"]
            lines.extend(f"task {t.id} ({t.kind}, running)" for t in running if t.id not in " ".join(lines))
        return lines

    async def _dispatch(self, link: NodeLink, selected: Agent | None) -> None:
        agents = sorted(a.id for a in link.snapshot.agents) if link.snapshot else []
        form: Dispatch | None = await self.host.push_screen_wait(
            DispatchDialog(
                agents,
                selected=selected.id if selected else None,
                node=link.name,
                production=link.environment == "production",
            )
        )
        if form is None:
            return
        task = await self._call(
            link,
            "dispatch",
            lambda: link.backend.dispatch(form.request, operator=self.operator, reason=form.reason),
        )
        if task is not None:
            self.host.notify(f"task {task.id} {task.status} for {task.target}", title="dispatched", timeout=5)
        await self._after(link)

    async def _checkpoint(self, link: NodeLink) -> None:
        decided = await self.host.push_screen_wait(CheckpointDialog(link.name))
        if decided is None:
            return
        label, reason = decided
        checkpoint = await self._call(
            link,
            "checkpoint",
            lambda: link.backend.checkpoint(label, operator=self.operator, reason=reason),
        )
        if checkpoint is not None:
            self.host.notify(f"checkpoint {checkpoint.id} taken ({checkpoint.label})", timeout=5)
        await self._after(link)

    async def _rollback(self, link: NodeLink, checkpoint_id: str | None) -> None:
        checkpoints = list(link.snapshot.checkpoints) if link.snapshot else []
        if checkpoint_id is None:
            if not checkpoints:
                self.host.notify(f"{link.name} has no checkpoints to roll back to", severity="warning")
                return
            checkpoint_id = await self.host.push_screen_wait(
                RollbackPicker(checkpoints, node=link.name, now=self.clock())
            )
            if checkpoint_id is None:
                return
        chosen = next((c for c in checkpoints if c.id == checkpoint_id), None)
        touched = list(chosen.covers) if chosen else [f"checkpoint {checkpoint_id}"]
        preview = await self._call(link, "preview", lambda: link.backend.rollback_preview(checkpoint_id))
        touched += list(preview or [])
        decided = await self.host.push_screen_wait(
            ConfirmDialog(
                f"Roll {link.name} back to {chosen.label if chosen else checkpoint_id}?",
                touched,
                node=link.name,
                production=link.environment == "production",
                verb="Roll back",
                note="Files and what git has staged go back to the checkpoint. Affected agents pause, a "
                "safety checkpoint is taken (undo: ctrl+z), then they resume.",
            )
        )
        if decided is None:
            return
        safety = await self._call(
            link,
            f"rollback to {checkpoint_id}",
            lambda: link.backend.rollback(checkpoint_id, operator=self.operator, reason=decided.reason),
        )
        if safety is not None:
            self.undo[link.name] = safety
            self.host.notify(
                f"rolled back to {checkpoint_id}; undo with ctrl+z (to {safety.id})",
                title="rollback",
                timeout=10,
            )
        await self._after(link)

    async def _recover(self, link: NodeLink) -> None:
        decided = await self.host.push_screen_wait(
            ConfirmDialog(
                f"Finish the interrupted rollback on {link.name}?",
                [self.interrupted.get(link.name, f"the interrupted rollback on {link.name}")],
                node=link.name,
                production=link.environment == "production",
                verb="Recover",
                note="It finishes the rollback and resumes the agents it paused; undo it then with ctrl+z.",
            )
        )
        if decided is None:
            return
        safety = await self._call(
            link,
            "recovery",
            lambda: link.backend.recover_rollback(operator=self.operator, reason=decided.reason),
        )
        if safety is not None:
            self.undo[link.name] = safety
            self.interrupted.pop(link.name, None)
            self.host.notify(
                f"recovered: the rollback is finished; undo with ctrl+z (to {safety.id})",
                title="rollback",
                timeout=10,
            )
        await self._after(link)

    @staticmethod
    def _succeeded(call: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[bool]]:
        async def run() -> bool:
            await call()
            return True

        return run

    async def _call(self, link: NodeLink, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """One backend call; its failure becomes a notification in words, never a traceback."""
        try:
            return await call()
        except BackendError as exc:
            self.host.notify(f"{what} on {link.name} failed: {exc}", severity="error", timeout=8)
        except Exception as exc:  # a backend may fail in any way; the console stays up
            self.host.notify(
                f"{what} on {link.name} failed: {describe_error(exc)}", severity="error", timeout=8
            )
        return None

    async def _after(self, link: NodeLink) -> None:
        """Show the result now: poll the node, and have the app repaint it and refresh the audit trail."""
        await link.poll(timeout=max(2.0, 3 * self.refresh_s))
        self.host.post_message(NodeRefreshed(link))


def agent_refusal(action: str, agent: Agent) -> str | None:
    """Why ``agent``'s state cannot take ``action`` (the node's own rule), naming a failed one's reason."""
    why = (agent.health_reason or agent.message) if agent.state == "failed" else None
    return state_refusal(action, agent.id, agent.state, why)
